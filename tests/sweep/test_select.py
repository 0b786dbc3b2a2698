"""The selection rules against choices and scores worked out by hand."""

from __future__ import annotations

import pytest

from obliviate.errors import ConfigError
from obliviate.sweep.select import evaluate_expression, hmean_scores, select

# model_utility floor = 0.95 x target's 0.56 = 0.532: a and c keep it, b (0.52) does not.
TOFU_ROWS = [
    {"name": "a", "forget_quality": 0.5, "model_utility": 0.55},
    {"name": "b", "forget_quality": 0.9, "model_utility": 0.52},
    {"name": "c", "forget_quality": 0.2, "model_utility": 0.60},
]
TARGET = {"name": "target", "model_utility": 0.56}


def test_default_rule_takes_the_best_forget_quality_above_the_utility_floor():
    sel = select(TOFU_ROWS, "default", TARGET)
    assert sel.index == 0  # b forgets best but is below 0.532 (at a 90% floor it would win)
    assert "95% of the target's (0.532)" in sel.rule and not sel.notes


def test_default_rule_breaks_forget_quality_ties_by_utility():
    rows = [{**TOFU_ROWS[0], "forget_quality": 0.2}, TOFU_ROWS[2]]
    assert select(rows, "default", TARGET).index == 1  # equal 0.2: c's 0.60 > a's 0.55


def test_default_rule_says_what_it_did_when_no_point_qualifies_or_no_target_is_given():
    sel = select(TOFU_ROWS, "default", {"model_utility": 0.7})  # floor 0.665
    assert sel.index is None
    assert sel.notes == [
        "no point reached model_utility >= 0.665: nothing selected; the closest is c (model_utility 0.6)"
    ]
    sel = select(TOFU_ROWS, "default", None)
    assert sel.index == 1 and "no utility floor" in sel.notes[-1]


def test_muse_default_rule_floor_then_memorisation_then_privleak():
    rows = [
        {"name": "p", "forget_verbmem_ROUGE": 0.2, "forget_knowmem_ROUGE": 0.3, "retain_knowmem_ROUGE": 0.50, "privleak": -3.0},
        {"name": "q", "forget_verbmem_ROUGE": 0.1, "forget_knowmem_ROUGE": 0.4, "retain_knowmem_ROUGE": 0.52, "privleak": 5.0},
        {"name": "r", "forget_verbmem_ROUGE": 0.05, "forget_knowmem_ROUGE": 0.05, "retain_knowmem_ROUGE": 0.40, "privleak": 0.0},
    ]  # fmt: skip
    # target 0.54 -> floor 0.513: only q keeps it (r forgets most but lost retain knowledge)
    assert select(rows, "default", {"retain_knowmem_ROUGE": 0.54}).index == 1
    # target 0.50 -> floor 0.475: p and q tie on mean forget ROUGE 0.25; |privleak| 3 < 5 -> p
    sel = select(rows, "default", {"retain_knowmem_ROUGE": 0.50})
    assert sel.index == 0 and "privleak closest to 0" in sel.rule


def test_hmean_is_the_harmonic_mean_of_memorisation_privacy_and_utility():
    row = {"name": "x", "extraction_strength": 0.1, "exact_memorization": 0.2,
           "forget_Q_A_PARA_Prob": 0.3, "forget_truth_ratio": 0.6, "privleak": -20.0,
           "model_utility": 0.45}  # fmt: skip
    mem = 4 / (1 / 0.9 + 1 / 0.8 + 1 / 0.7 + 1 / 0.6)  # 1-ES, 1-EM, 1-ParaProb, truth ratio
    priv = 1 - 20 / 100
    util = 0.45 / 0.5  # relative to the target's model_utility
    got = hmean_scores(row, {"model_utility": 0.5}, None)
    assert got["memorisation"] == pytest.approx(mem) and mem == pytest.approx(0.733091, abs=1e-6)
    assert got["privacy"] == pytest.approx(priv) and got["utility"] == pytest.approx(util)
    assert got["agg"] == pytest.approx(3 / (1 / mem + 1 / priv + 1 / util))
    worse = {**row, "privleak": 60.0}  # privacy 0.4 drags the mean down
    assert select([row, worse], "hmean", {"model_utility": 0.5}).index == 0


def test_expression_rules_and_their_safety():
    assert select(TOFU_ROWS, "max:forget_quality*(model_utility>=0.55)").index == 0
    assert select(TOFU_ROWS, "min:model_utility").index == 1
    assert select(TOFU_ROWS, "forget_quality").index == 1
    row = {"name": "a", "forget_quality": 0.2, "model_utility": 0.5, "attack/lira/auc": 0.7}
    assert evaluate_expression("forget_quality/model_utility - 1e-3", row) == pytest.approx(0.399)
    assert evaluate_expression("attack/lira/auc * 2", row) == pytest.approx(1.4)
    assert evaluate_expression("log(forget_quality - 0.2)", row) is None  # log(0): no value
    for bad in ("__import__('os').system('true')", "forget_quality.real", "(lambda: 1)()"):
        with pytest.raises(ConfigError):
            evaluate_expression(bad, row)
    with pytest.raises(ConfigError, match="unknown metric"):
        evaluate_expression("forget_qualty", row)
    with pytest.raises(ConfigError, match="not a rule"):
        select(TOFU_ROWS, "best")
