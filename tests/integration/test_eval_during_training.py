"""trainer.args.eval_strategy=steps runs the TOFU evaluation on the current weights, writes it
to checkpoint-<step>/evals/ and logs the headline metrics to trainer_log.txt."""

from __future__ import annotations

import json

from conftest import compose_config
from obliviate.training import run_training


def test_eval_strategy_steps_writes_checkpoint_evals(tmp_path):
    cfg = compose_config(
        [
            "experiment=unlearn/tofu/default",
            "trainer=SimNPO",
            "model=tiny-bytes",  # the hook is the point, not the tokenizer
            "tofu_data=builtin",  # 5 generated authors: forget20 / retain80 / holdout20
            f"+builtin_data.cache_dir={tmp_path / 'data'}",
            "forget_split=forget20",
            "retain_split=retain80",
            "holdout_split=holdout20",
            "task_name=evalrun",
            f"paths.root={tmp_path}",
            "trainer.args.per_device_train_batch_size=2",
            "trainer.args.gradient_accumulation_steps=1",
            "trainer.args.max_steps=2",
            "trainer.args.eval_strategy=steps",
            "+trainer.args.eval_steps=2",
            "eval.max_items=3",
            "eval.max_new_tokens=4",
        ]
    )
    out = run_training(cfg)
    evals = out / "checkpoint-2" / "evals"
    res = json.loads((evals / "TOFU_EVAL.json").read_text())
    summary = json.loads((evals / "TOFU_SUMMARY.json").read_text())
    assert res["eval_info"]["max_items"] == 3  # the cap is recorded with the numbers
    assert res["forget_Q_A_Prob"]["n"] == 3 and len(res["forget_Q_A_Prob"]["value_by_index"]) == 3
    assert 0 < summary["forget_Q_A_Prob"] < 1
    log = (out / "trainer_log.txt").read_text()
    line = next(ln for ln in log.splitlines() if "eval_forget_Q_A_Prob=" in ln)
    assert line.startswith("step=2 ")
    logged = float(line.split("eval_forget_Q_A_Prob=")[1].split()[0])
    assert abs(logged - summary["forget_Q_A_Prob"]) <= 1e-5 * max(1.0, summary["forget_Q_A_Prob"])
