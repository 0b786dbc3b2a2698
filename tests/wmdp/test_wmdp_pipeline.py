"""RMU on the built-in WMDP stand-in, with lm-eval during training and after: the tiny model,
offline, every file and key along the user path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import compose_config
from obliviate.eval.runner import run_eval
from obliviate.training import run_training


def train_rmu(tmp_path: Path, tasks: str, limit: int) -> Path:
    """2 RMU steps of the tiny model on the built-in corpora; lm-eval at step 2 (the last)."""
    return run_training(
        compose_config(
            [
                "experiment=unlearn/wmdp/default",
                "wmdp_data=builtin",
                "model=tiny-bytes",
                "task_name=rmu",
                "data.max_length=64",
                "trainer.method_args.layer=1",  # the tiny model has 2 layers
                "trainer.method_args.steering_coeff=2.0",
                "trainer.args.per_device_train_batch_size=2",
                "trainer.args.max_steps=2",
                "trainer.args.eval_strategy=steps",
                "trainer.args.eval_steps=2",
                f"eval.lm_eval.tasks={tasks}",
                f"eval.lm_eval.limit={limit}",
                "eval.lm_eval.batch_size=4",
                f"paths.output_dir={tmp_path / 'rmu'}",
            ]
        )
    )


def test_rmu_on_builtin_wmdp_runs_lm_eval_during_training(tmp_path):
    run = train_rmu(tmp_path, "[wmdp_cyber]", 2)  # wmdp_data=builtin: builtin_hazard stands in
    during = json.loads((run / "checkpoint-2" / "evals" / "LMEval_SUMMARY.json").read_text())
    assert set(during) == {"builtin_hazard/acc", "builtin_hazard/acc_stderr"}
    assert during["builtin_hazard/acc"] in (0.0, 0.5, 1.0)  # 2 items
    receipt = json.loads((run / "receipt.json").read_text())
    assert receipt["method"] == "RMU" and receipt["global_steps"] == 2
    log = (run / "trainer_log.txt").read_text()
    assert "builtin_hazard/acc" in log  # the training log carries lm-eval's numbers


@pytest.mark.slow  # a second lm-eval run and a model load
def test_saved_model_through_the_wmdp_eval_experiment_gives_the_same_numbers(tmp_path):
    run = train_rmu(tmp_path, "[wmdp_cyber,mmlu]", 4)
    during = json.loads((run / "checkpoint-2" / "evals" / "LMEval_SUMMARY.json").read_text())
    out = run_eval(
        compose_config(
            [
                "experiment=eval/wmdp/default",
                "wmdp_data=builtin",
                "model=tiny-bytes",
                f"model.model_args.pretrained_model_name_or_path={run}",
                "task_name=ev",
                "eval.lm_eval.limit=4",
                "eval.lm_eval.batch_size=4",
                f"paths.output_dir={tmp_path / 'ev'}",
            ],
            "eval.yaml",
        )
    )
    after = json.loads((out / "LMEval_SUMMARY.json").read_text())
    assert set(after) == {f"{t}/{m}" for t in ("builtin_hazard", "builtin_retain") for m in ("acc", "acc_stderr")}  # fmt: skip
    assert after == during
    records = json.loads((out / "LMEval_EVAL.json").read_text())
    assert [len(records[t][t]) for t in ("builtin_hazard", "builtin_retain")] == [4, 4]
