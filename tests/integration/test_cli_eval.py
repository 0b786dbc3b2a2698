"""The guide's evaluation entry point end to end: train the tiny SimNPO run with
``python src/train.py`` (conftest's ``cli_simnpo_run``), evaluate it with ``python src/eval.py``
on the built-in fictitious-author data (``tofu_data=builtin``: 5 authors, forget20 and its
holdout20; 4 items per split, 4 new tokens), use that evaluation as a retain log, and refuse to
overwrite results. Needs nothing beside the repository.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import run_cli, snapshot

# Every key of metrics.md's "Aggregates" table.
AGGREGATES = (
    "forget_Q_A_Prob",
    "forget_Q_A_ROUGE",
    "forget_truth_ratio",
    "forget_quality",
    "retain_Q_A_Prob",
    "retain_Q_A_ROUGE",
    "retain_Truth_Ratio",
    "ra_Truth_Ratio",
    "wf_Truth_Ratio",
    "ra_Q_A_Prob_normalised",
    "wf_Q_A_Prob_normalised",
    "ra_Q_A_ROUGE",
    "wf_Q_A_ROUGE",
    "model_utility",
)
PER_ITEM = [k for k in AGGREGATES if k not in ("forget_quality", "model_utility")]
N_ITEMS = 4


def eval_command(model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    data_cache = model_dir.parent / "builtin_data"
    return [
        sys.executable, "src/eval.py",
        "--config-name=eval.yaml",
        "experiment=eval/tofu/default",
        "forget_split=forget20",
        "holdout_split=holdout20",
        "model=tiny",
        "tofu_data=builtin",
        "builtin_data.authors=5",
        f"+builtin_data.cache_dir={data_cache}",
        "task_name=ci_eval",
        f"model.model_args.pretrained_model_name_or_path={model_dir}",
        f"paths.output_dir={output_dir}",
        f"eval.max_items={N_ITEMS}",
        "eval.max_new_tokens=4",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(cli_simnpo_run) -> Path:
    """The tiny SimNPO run of the training CLI test (mini-TOFU's forget20)."""
    _, proc, out = cli_simnpo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def first_eval(trained):
    out = trained / "evals"
    return out, run_cli(eval_command(trained, out))


def test_eval_writes_every_aggregate_with_n(first_eval):
    out, proc = first_eval
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "TOFU_SUMMARY.json").read_text())
    full = json.loads((out / "TOFU_EVAL.json").read_text())
    assert not [k for k in AGGREGATES if k not in summary], summary
    for key in AGGREGATES:
        assert summary[key] == full[key]["agg_value"], key
        if key != "forget_quality":
            assert isinstance(summary[key], float), (key, summary[key])
    assert full["eval_info"]["n_per_split"] == {
        p: N_ITEMS for p in ("forget", "retain", "ra", "wf")
    }
    for key in PER_ITEM:
        assert full[key]["n"] == N_ITEMS, key
        assert sorted(full[key]["value_by_index"], key=int) == [str(i) for i in range(N_ITEMS)]
    assert full["forget_quality"]["n"] == N_ITEMS
    # the privacy attack ran on forget vs the built-in holdout; privleak needs a retain log
    assert (full["mia_min_k"]["n_forget"], full["mia_min_k"]["n_holdout"]) == (N_ITEMS, N_ITEMS)
    assert summary["privleak"] is None and "mia_min_k" in full["privleak"]["note"]
    # The guide's eval also writes its config and receipt beside the results.
    assert (out / "eval_config.yaml").is_file() and (out / "eval_receipt.json").is_file()


def test_without_a_retain_log_forget_quality_is_null_and_the_console_says_how_to_get_one(
    first_eval,
):
    out, proc = first_eval
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "TOFU_SUMMARY.json").read_text())["forget_quality"] is None
    notes = [line for line in proc.stdout.splitlines() if "forget_quality not computed" in line]
    assert len(notes) == 1, proc.stdout[-3000:]
    assert "saves/eval/tofu_tiny_retain80" in notes[0]
    assert "retain_logs_path=saves/eval/tofu_tiny_retain80/TOFU_EVAL.json" in notes[0]
    # The table printed to the console shows forget_quality as null, with its n and direction.
    row = next(line for line in proc.stdout.splitlines() if line.startswith("forget_quality "))
    assert row.split()[1:3] == ["null", str(N_ITEMS)] and "higher is better" in row


def test_the_model_against_its_own_log_has_forget_quality_one(first_eval, trained):
    out, proc = first_eval
    assert proc.returncode == 0, proc.stderr[-3000:]
    second = trained / "evals_vs_self"
    again = run_cli(eval_command(trained, second, f"retain_logs_path={out / 'TOFU_EVAL.json'}"))
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((second / "TOFU_SUMMARY.json").read_text())
    assert summary["forget_quality"] == 1.0
    fq = json.loads((second / "TOFU_EVAL.json").read_text())["forget_quality"]
    assert fq["n"] == fq["n_retain"] == N_ITEMS
    assert fq["retain_logs_path"] == str(out / "TOFU_EVAL.json")
    # the same attack AUC on both sides: no privacy leak relative to the "retain" model
    auc = json.loads((out / "TOFU_EVAL.json").read_text())["mia_min_k"]["agg_value"]
    assert summary["privleak"] == (None if auc == 1.0 else 0.0)


def test_rerun_into_the_same_folder_without_overwrite_refuses_and_keeps_the_results(
    first_eval, trained
):
    out, proc = first_eval
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = snapshot(out)
    again = run_cli(eval_command(trained, out, f"retain_logs_path={out / 'TOFU_EVAL.json'}"))
    assert again.returncode != 0
    assert "Traceback" not in again.stderr
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, again.stderr[-3000:]
    assert str(out) in errors[0] and "overwrite=true" in errors[0]
    assert snapshot(out) == before  # same files, same bytes, same mtimes
