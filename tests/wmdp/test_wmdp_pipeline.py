"""RMU on the built-in WMDP stand-in, with lm-eval during training and after: the tiny model,
offline, every file and key along the user path."""

from __future__ import annotations

import json

from conftest import compose_config
from obliviate.eval.runner import run_eval
from obliviate.training import run_training

LM_EVAL_FAST = ["eval.lm_eval.limit=4", "eval.lm_eval.batch_size=4"]


def test_rmu_on_builtin_wmdp_then_lm_eval(tmp_path):
    run = run_training(
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
                *LM_EVAL_FAST,
                f"paths.output_dir={tmp_path / 'rmu'}",
            ]
        )
    )
    # lm-eval during training, on the weights of step 2 (the last step)
    during = json.loads((run / "checkpoint-2" / "evals" / "LMEval_SUMMARY.json").read_text())
    assert set(during) == {
        "builtin_hazard/acc",
        "builtin_hazard/acc_stderr",
        "builtin_retain/acc",
        "builtin_retain/acc_stderr",
    }
    receipt = json.loads((run / "receipt.json").read_text())
    assert receipt["method"] == "RMU" and receipt["global_steps"] == 2

    # the saved model through the WMDP evaluation experiment: the same numbers
    out = run_eval(
        compose_config(
            [
                "experiment=eval/wmdp/default",
                "wmdp_data=builtin",
                "model=tiny-bytes",
                f"model.model_args.pretrained_model_name_or_path={run}",
                "task_name=ev",
                *LM_EVAL_FAST,
                f"paths.output_dir={tmp_path / 'ev'}",
            ],
            "eval.yaml",
        )
    )
    after = json.loads((out / "LMEval_SUMMARY.json").read_text())
    assert after == during
    records = json.loads((out / "LMEval_EVAL.json").read_text())
    assert [len(records[t][t]) for t in ("builtin_hazard", "builtin_retain")] == [4, 4]
