"""The guide's evaluation entry point end to end: train the tiny SimNPO run with
``python src/train.py``, evaluate it with ``python src/eval.py`` (8 items per split, 16 new
tokens), use that evaluation as a retain log, and refuse to overwrite results.

Needs the real TOFU evaluation files in ../shared/tofu; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import SHARED_TOFU, run_cli, snapshot

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
EVAL_FILES = (
    "forget01.json",
    "retain99.json",
    "full.json",
    "forget01_perturbed.json",
    "retain_perturbed.json",
    "real_authors_perturbed.json",
    "world_facts_perturbed.json",
)
N_ITEMS = 8


def eval_command(model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "src/eval.py",
        "--config-name=eval.yaml",
        "experiment=eval/tofu/default",
        "forget_split=forget01",
        "holdout_split=holdout01",
        "model=tiny",
        f"tofu_data={SHARED_TOFU}",
        "task_name=ci_eval",
        f"model.model_args.pretrained_model_name_or_path={model_dir}",
        f"paths.output_dir={output_dir}",
        f"eval.max_items={N_ITEMS}",
        "eval.max_new_tokens=16",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(cli_simnpo_run) -> Path:
    """The tiny SimNPO run of the training CLI test (forget01 of the shared TOFU)."""
    missing = [f for f in EVAL_FILES if not (SHARED_TOFU / f).is_file()]
    if missing:
        pytest.skip(f"shared TOFU data not found at {SHARED_TOFU} (missing {', '.join(missing)})")
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
    assert "saves/eval/tofu_tiny_retain99" in notes[0]
    assert "retain_logs_path=saves/eval/tofu_tiny_retain99/TOFU_EVAL.json" in notes[0]
    # The table printed to the console shows forget_quality as null, with its n and direction.
    row = next(line for line in proc.stdout.splitlines() if line.startswith("forget_quality "))
    assert row.split()[1:3] == ["null", str(N_ITEMS)] and "higher is better" in row


def test_the_model_against_its_own_log_has_forget_quality_one(first_eval, trained):
    out, proc = first_eval
    if proc.returncode != 0:
        pytest.skip("the first evaluation failed (reported above)")
    second = trained / "evals_vs_self"
    again = run_cli(eval_command(trained, second, f"retain_logs_path={out / 'TOFU_EVAL.json'}"))
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((second / "TOFU_SUMMARY.json").read_text())
    assert summary["forget_quality"] == 1.0
    fq = json.loads((second / "TOFU_EVAL.json").read_text())["forget_quality"]
    assert fq["n"] == fq["n_retain"] == N_ITEMS
    assert fq["retain_logs_path"] == str(out / "TOFU_EVAL.json")


def test_rerun_into_the_same_folder_without_overwrite_refuses_and_keeps_the_results(
    first_eval, trained
):
    out, proc = first_eval
    if proc.returncode != 0:
        pytest.skip("the first evaluation failed (reported above)")
    before = snapshot(out)
    again = run_cli(eval_command(trained, out, f"retain_logs_path={out / 'TOFU_EVAL.json'}"))
    assert again.returncode != 0
    assert "Traceback" not in again.stderr
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, again.stderr[-3000:]
    assert str(out) in errors[0] and "overwrite=true" in errors[0]
    assert snapshot(out) == before  # same files, same bytes, same mtimes
