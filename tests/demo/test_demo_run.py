"""``obliviate demo`` end to end on the tiny model and 2 built-in authors (1 optimizer step per
training run), then again to show every stage is reused; and ``obliviate compare`` over the
demo's evaluation folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import ks_2samp

from obliviate.demo.cli import main
from obliviate.demo.stages import MARKER

ARGS = [
    "--model", "tiny",
    "--authors", "2",
    "--forget-authors", "1",
    "--methods", "SimNPO",
    "--max-steps", "1",
    "--batch-size", "2",
    "--unlearn-batch-size", "2",
    "--eval-items", "2",
    "--max-new-tokens", "4",
    "--eval-batch-size", "4",
    "--device", "cpu",
]  # fmt: skip
STAGES = ("target", "retain", "unlearn/SimNPO", "evals/retain", "evals/target", "evals/SimNPO")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo")
    monkeypatch_module.setenv("OBLIVIATE_CACHE", str(tmp_path_factory.mktemp("cache")))
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["demo", *ARGS, "--out", str(out)])
    assert code == 0
    return out, buf.getvalue()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_demo_runs_every_stage_and_writes_the_comparison(demo):
    out, printed = demo
    for stage in STAGES:
        assert (out / stage / MARKER).is_file(), stage
    for run in ("target", "retain", "unlearn/SimNPO"):
        assert (out / run / "model.safetensors").is_file()
    report = json.loads((out / "comparison.json").read_text())
    assert [(r["name"], r["kind"]) for r in report["rows"]] == [
        ("target", "target"),
        ("retain", "retain"),
        ("SimNPO", "method"),
    ]
    retain = report["rows"][1]
    assert retain["forget_quality"] == 1.0  # the retain model against its own log
    for row in report["rows"]:
        for col in report["columns"]:
            assert col["metric"] in row
    assert report["forget_split"] == "forget50" and report["n_forget"] == 2
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "comparison.md").read_text()
    assert "forget_quality ↑" in md and "| SimNPO |" in md
    # The evaluations compare the same items: the retain log drives forget_quality.
    target_eval = json.loads((out / "evals/target/TOFU_EVAL.json").read_text())
    assert target_eval["forget_quality"]["retain_logs_path"].endswith("evals/retain/TOFU_EVAL.json")
    assert target_eval["eval_info"]["max_new_tokens"] == 4
    # Progress lines and the closing wall time are printed.
    assert "[1/7] finetune the target" in printed and "[7/7] comparison" in printed
    assert "obliviate demo finished in" in printed


def test_second_run_reuses_every_stage(demo):
    out, _ = demo
    import contextlib
    import io

    before = (out / "unlearn/SimNPO/model.safetensors").stat().st_mtime_ns
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["demo", *ARGS, "--out", str(out)]) == 0
    printed = buf.getvalue()
    assert printed.count("reused cached result") == len(STAGES)
    assert (out / "unlearn/SimNPO/model.safetensors").stat().st_mtime_ns == before


def test_compare_collects_evaluation_folders(demo, tmp_path):
    out, _ = demo
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                "compare",
                str(out / "evals/target"),
                str(out / "evals/retain"),
                str(out / "evals/SimNPO"),
                f"retain_logs_path={out / 'evals/retain/TOFU_EVAL.json'}",
                "--out",
                str(tmp_path),
            ]
        )
    assert code == 0
    report = json.loads((tmp_path / "comparison.json").read_text())
    assert [(r["name"], r["kind"]) for r in report["rows"]] == [
        ("target", "model"),
        ("retain", "retain"),
        ("SimNPO", "model"),
    ]
    # forget_quality of each model = the two-sided KS p-value of its per-item forget truth ratios
    # against the retain model's, recomputed here from the two TOFU_EVAL.json files.
    def ratios(name: str) -> list[float]:
        res = json.loads((out / "evals" / name / "TOFU_EVAL.json").read_text())
        return [v["score"] for v in res["forget_truth_ratio"]["value_by_index"].values()]

    for row in report["rows"]:
        expected = ks_2samp(ratios(row["name"]), ratios("retain")).pvalue
        assert row["forget_quality"] == pytest.approx(expected, rel=1e-9), row["name"]
    assert (tmp_path / "comparison.md").is_file() and (tmp_path / "comparison.png").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--methods", "SimNP"], "not an unlearning method"),
        (["demo", "--authors", "3"], "not a TOFU-style split"),
        (["demo", "--forget-authors", "3"], "not a TOFU-style split"),
        (["demo", "--model", "gpt5"], "not a model config"),
        (["compare", "NoSuchMethod"], "neither an evaluation folder nor a method"),
        (["compare"], "needs method names"),
    ],
)
def test_mistakes_are_one_line_before_any_work(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert not (tmp_path / "o").exists()


def test_compare_runs_the_guides_loop_for_a_method_then_reuses_it(demo, tmp_path):
    out, _ = demo
    overrides = [
        "model=tiny",
        "tofu_data=builtin",
        "builtin_data.authors=2",
        "forget_split=forget50",
        "retain_split=retain50",
        "holdout_split=holdout50",
        f"model.model_args.pretrained_model_name_or_path={out / 'target'}",
        f"retain_logs_path={out / 'evals/retain/TOFU_EVAL.json'}",
        "trainer.args.max_steps=1",
        "trainer.args.per_device_train_batch_size=2",
        "trainer.args.gradient_accumulation_steps=1",
        "eval.max_items=2",
        "eval.max_new_tokens=4",
        "eval.batch_size=4",
        f"paths.root={tmp_path / 'saves'}",
    ]
    import contextlib
    import io

    def compare() -> str:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["compare", "SimNPO", *overrides]) == 0
        return buf.getvalue()

    compare()
    run = tmp_path / "saves/unlearn/tofu_SimNPO_forget50"  # the guide's layout
    assert (run / "model.safetensors").is_file()
    assert (run / "evals/TOFU_EVAL.json").is_file()
    report = json.loads((tmp_path / "saves/compare/forget50/comparison.json").read_text())
    [row] = report["rows"]
    assert row["name"] == "SimNPO" and row["kind"] == "method"
    assert row["forget_quality"] is not None  # the retain log was passed to the evaluation
    stamp = (run / "model.safetensors").stat().st_mtime_ns
    again = compare()
    assert again.count("reusing") == 2
    assert (run / "model.safetensors").stat().st_mtime_ns == stamp
