"""The comparison report: rows from TOFU_EVAL.json files, forget_quality filled in from a retain
log with the evaluator's own test, directions shown, verdicts, and refusal to mix splits."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from obliviate.demo import report as R
from obliviate.errors import ConfigError


def fake_eval(
    folder: Path, truth_ratios: list[float], fq: float | None, mu: float, split: str = "forget20"
) -> Path:
    """A minimal TOFU_EVAL.json with the keys the report reads."""
    folder.mkdir(parents=True, exist_ok=True)
    res = {
        "forget_quality": {"agg_value": fq},
        "model_utility": {"agg_value": mu},
        "forget_truth_ratio": {
            "agg_value": float(np.mean(np.minimum(truth_ratios, 1 / np.array(truth_ratios)))),
            "value_by_index": {str(i): {"score": v} for i, v in enumerate(truth_ratios)},
            "n": len(truth_ratios),
        },
        "forget_Q_A_Prob": {"agg_value": 0.5},
        "forget_Q_A_ROUGE": {"agg_value": 0.6},
        "retain_Q_A_Prob": {"agg_value": 0.7},
        "retain_Q_A_ROUGE": {"agg_value": 0.8},
        "eval_info": {"forget_split": split, "max_items": None},
    }
    path = folder / "TOFU_EVAL.json"
    path.write_text(json.dumps(res))
    return path


RETAIN_TR = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
TARGET_TR = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08]


def test_forget_quality_is_filled_in_from_the_retain_log(tmp_path):
    retain_path = fake_eval(tmp_path / "retain", RETAIN_TR, None, 0.5)
    log = json.loads(retain_path.read_text())
    target_path = fake_eval(tmp_path / "target", TARGET_TR, None, 0.6)
    retain = R.load_row("retain", "retain", retain_path, log, str(retain_path))
    target = R.load_row("target", "target", target_path, log, str(retain_path))
    assert retain.values["forget_quality"] == 1.0  # the retain model against its own log
    # Every target ratio lies below every retain ratio: the exact two-sided KS p-value of two fully
    # separated samples of n = m is 2 / C(2n, n) (only the two extreme orderings are as extreme).
    n = len(TARGET_TR)
    assert target.values["forget_quality"] == pytest.approx(2 / math.comb(2 * n, n), rel=1e-9)
    assert target.notes and "computed by the report" in target.notes[0]
    # An evaluation's own forget_quality is kept as it is.
    own = R.load_row("m", "method", fake_eval(tmp_path / "m", TARGET_TR, 0.25, 0.5), log)
    assert own.values["forget_quality"] == 0.25 and not own.notes


def test_a_retain_log_of_another_size_is_refused(tmp_path):
    retain_path = fake_eval(tmp_path / "retain", RETAIN_TR[:4], None, 0.5)
    with pytest.raises(ConfigError, match="per-item truth ratios"):
        R.load_row(
            "t",
            "target",
            fake_eval(tmp_path / "t", TARGET_TR, None, 0.6),
            json.loads(retain_path.read_text()),
            str(retain_path),
        )


def test_rows_from_different_splits_are_not_compared(tmp_path):
    a = R.load_row("a", "method", fake_eval(tmp_path / "a", TARGET_TR, 0.1, 0.5, "forget20"))
    b = R.load_row("b", "method", fake_eval(tmp_path / "b", TARGET_TR, 0.1, 0.5, "forget40"))
    with pytest.raises(ConfigError, match="different forget sets"):
        R.build_report([a, b], {})


def rows_for_verdicts(tmp_path: Path) -> list[R.Row]:
    return [
        R.load_row("target", "target", fake_eval(tmp_path / "t", TARGET_TR, 1e-4, 0.50)),
        R.load_row("retain", "retain", fake_eval(tmp_path / "r", RETAIN_TR, 1.0, 0.48)),
        R.load_row("Good", "method", fake_eval(tmp_path / "g", TARGET_TR, 2e-3, 0.45)),
        R.load_row("Weak", "method", fake_eval(tmp_path / "w", TARGET_TR, 5e-4, 0.50)),
        R.load_row("Broken", "method", fake_eval(tmp_path / "b", TARGET_TR, 0.5, 0.10)),
    ]


def test_verdicts_name_who_forgets_and_keeps_utility(tmp_path):
    v = R.verdicts(rows_for_verdicts(tmp_path))
    assert v[0].startswith("target forget_quality 1.00e-04 vs the retain model's 1")
    assert "Good: forget_quality x20" in v[1] and "keeps utility" in v[1]
    assert "Weak" in v[2] and "forgets less than x10" in v[2]
    assert "Broken" in v[3] and "utility lost" in v[3]


def test_table_json_and_plot_are_written_with_directions(tmp_path):
    files = R.write_report(rows_for_verdicts(tmp_path), tmp_path / "out", {"model": "m"})
    assert set(files) == {"plot", "table", "json"}
    md = files["table"].read_text()
    assert md.splitlines()[0].startswith("| model | forget_quality ↑ | model_utility ↑ |")
    assert "| target | 1.00e-04 | 0.500 |" in md and "| Good | 2.00e-03 |" in md
    report = json.loads(files["json"].read_text())
    assert [c["metric"] for c in report["columns"]][:3] == [
        "forget_quality",
        "model_utility",
        "forget_truth_ratio",
    ]
    assert all(c["direction"] in "↑↓→" for c in report["columns"])
    assert [r["name"] for r in report["rows"]] == ["target", "retain", "Good", "Weak", "Broken"]
    assert report["forget_split"] == "forget20" and report["n_forget"] == len(TARGET_TR)
    png = files["plot"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_forget_quality_of_overlapping_samples_is_scipys_two_sided_ks(tmp_path):
    """Interleaved samples (not the fully separated closed form): the p-value is scipy's own
    exact two-sided KS test, called here directly."""
    from scipy.stats import ks_2samp

    ours = [0.55, 0.65, 0.75, 0.85, 0.95, 1.05, 1.3, 1.4]
    retain_path = fake_eval(tmp_path / "retain", RETAIN_TR, None, 0.5)
    log = json.loads(retain_path.read_text())
    row = R.load_row("m", "method", fake_eval(tmp_path / "m", ours, None, 0.5), log, "r")
    expected = ks_2samp(ours, RETAIN_TR, alternative="two-sided", method="exact").pvalue
    assert row.values["forget_quality"] == pytest.approx(expected, rel=1e-9)
    assert 0.05 < expected < 1.0


def coinciding_report(tmp_path: Path) -> dict:
    rows = rows_for_verdicts(tmp_path)
    rows.append(R.load_row("Twin", "method", fake_eval(tmp_path / "tw", TARGET_TR, 2e-3, 0.45)))
    return R.build_report(rows, {"model": "m"})


def test_plot_labels_of_coinciding_points_do_not_overlap(tmp_path):
    """'Good' and 'Twin' sit on the same point: their label boxes, as the renderer draws them,
    must not intersect (nor any other pair)."""
    import matplotlib.pyplot as plt

    fig, labels = R.figure(coinciding_report(tmp_path))
    renderer = fig.canvas.get_renderer()
    boxes = {a.get_text(): a.get_window_extent(renderer) for a in labels}
    plt.close(fig)
    assert set(boxes) == {"target", "retain", "Good", "Weak", "Broken", "Twin"}
    assert boxes["Good"].width > 0 and boxes["Good"].height > 0
    names = sorted(boxes)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not boxes[a].overlaps(boxes[b]), (a, b, boxes[a], boxes[b])


def test_labels_at_one_point_start_out_overlapping(tmp_path):
    """The case above is a real one: drawn at the same offset, the two labels do intersect."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    a = ax.annotate("Good", (0.45, 2e-3), textcoords="offset points", xytext=(6, 4))
    b = ax.annotate("Twin", (0.45, 2e-3), textcoords="offset points", xytext=(6, 4))
    renderer = fig.canvas.get_renderer()
    assert a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer))
    R.separate_labels(fig, [a, b])
    assert not a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer))
    plt.close(fig)


def test_the_table_states_the_demo_settings_and_its_cost(tmp_path):
    meta = {
        "data": "builtin (5 authors, seed 1)",
        "device": "CPU (2 cores)",
        "wall_seconds": 512.4,
        "load_average": {"start": 1.5, "end": 2.25},
        "stage_cpu_seconds_total": 930.0,
        "stage_seconds_total": 1500.0,
        "stages": [{"reused": True}, {"reused": True}, {"reused": False}],
        "bf16_autocast": True,
        "method_args": {"SimNPO": {"gamma": 0.125, "beta": 4.5}, "GradAscent": {}},
        "settings": {
            "forget_authors": 2, "epochs": 3.0, "lr": 2e-4, "batch_size": 16,
            "unlearn_epochs": 1.0, "unlearn_lr": 1.5e-4, "unlearn_batch_size": 4,
            "warmup_epochs": 0.5, "utility_items": 8, "max_new_tokens": 32,
        },
    }  # fmt: skip
    md = R.markdown(R.build_report(rows_for_verdicts(tmp_path), meta))
    line = md.strip().splitlines()[-1]
    assert line.startswith("Demo settings: builtin (5 authors, seed 1), 2 forgotten;")
    for part in (
        "finetuning 3 epochs at lr 0.0002, batch 16",
        "unlearning 1 epoch(s) at lr 0.00015, batch 4",
        "bf16 autocast",
        "SimNPO gamma 0.125, beta 4.5",
        "Wall time 512 s on CPU (2 cores) (1-min load average 1.5 -> 2.25)",
        "2 of 3 stages reused from an earlier run",
        "all stages together took 1500 s wall, 930 CPU seconds",
        "GradAscent (no arguments)",
    ):
        assert part in line, part
