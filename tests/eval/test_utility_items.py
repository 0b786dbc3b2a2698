"""``eval.utility_items`` caps the retain / real-author / world-fact items only: model_utility
gets cheaper while the forget items, and so forget_quality, stay as they are."""

from __future__ import annotations

import json

from conftest import tiny_eval_config
from obliviate.eval.runner import run_eval


def test_utility_cap_leaves_the_forget_items_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    cfg = tiny_eval_config(
        tmp_path / "eval", "eval.max_items=5", "eval.utility_items=2", "eval.batch_size=8"
    )
    run_eval(cfg)
    res = json.loads((tmp_path / "eval" / "TOFU_EVAL.json").read_text())
    info = res["eval_info"]
    assert info["utility_items"] == 2 and info["max_items"] == 5
    assert info["n_per_split"] == {"forget": 5, "retain": 2, "ra": 2, "wf": 2}
    assert len(res["forget_truth_ratio"]["value_by_index"]) == 5
    assert len(res["retain_Q_A_ROUGE"]["value_by_index"]) == 2
    assert res["model_utility"]["agg_value"] is not None
