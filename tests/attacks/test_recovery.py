"""The recovered share and the target's level on the evaluated items, worked out by hand."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from obliviate.attacks.recovery import recovered_share, target_levels
from obliviate.errors import ConfigError


def test_recovered_share_is_the_closed_part_of_the_gap_to_the_target():
    # unlearned 0.2, target 0.8: after 0.5 closes (0.5 - 0.2) / (0.8 - 0.2) = half the gap
    assert recovered_share(0.2, 0.5, 0.8) == pytest.approx(0.5)
    assert recovered_share(0.2, 0.8, 0.8) == pytest.approx(1.0)
    assert recovered_share(0.2, 0.1, 0.8) == pytest.approx(-1 / 6)  # forgot even more
    # nothing forgotten (target not above the model), or a missing number: undefined
    assert recovered_share(0.8, 0.9, 0.8) is None
    assert recovered_share(0.9, 0.9, 0.8) is None
    assert recovered_share(0.3, 0.5, 0.3 + 1e-6) is None  # a numerical-noise gap
    assert recovered_share(None, 0.5, 0.8) is None


def test_target_levels_average_only_the_items_the_attack_evaluated(tmp_path):
    probs = [0.9, 0.1, 0.7, 0.5]
    rouges = [1.0, 0.0, 0.5, 0.25]
    log = {
        "forget_Q_A_Prob": {
            "n": 4,
            "value_by_index": {str(i): {"prob": p} for i, p in enumerate(probs)},
        },
        "forget_Q_A_ROUGE": {
            "n": 4,
            "value_by_index": {str(i): {"rougeL_recall": r} for i, r in enumerate(rouges)},
        },
    }
    path = tmp_path / "TOFU_EVAL.json"
    path.write_text(json.dumps(log))
    counts = {"forget_Q_A_Prob": 4, "forget_Q_A_ROUGE": 4}
    levels = target_levels(path, counts, excluded=[1])
    assert levels["forget_Q_A_Prob"] == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    assert levels["forget_Q_A_ROUGE"] == pytest.approx((1.0 + 0.5 + 0.25) / 3)
    with pytest.raises(ConfigError, match="has 4 items for forget_Q_A_Prob, this evaluation has 5"):
        target_levels(path, {"forget_Q_A_Prob": 5})


def muse_eval(verbmem: list[float], knowmem: list[float], excluded: list[int]) -> dict:
    """A MUSE_EVAL.json's recovered metrics with these per-item ROUGE-L F1 values."""

    def entry(values: list[float]) -> dict:
        by = {str(i): {"rougeL_f1": v} for i, v in enumerate(values)}
        return {"agg_value": sum(values) / len(values), "value_by_index": by, "n": len(values)}

    info = {"excluded_forget_indices": excluded} if excluded else {}
    return {
        "forget_verbmem_ROUGE": entry(verbmem),
        "forget_knowmem_ROUGE": entry(knowmem),
        "eval_info": info,
    }


def test_muse_recovery_uses_the_targets_kept_verbmem_items_and_all_knowmem_items(tmp_path):
    from obliviate.attacks.base import Attack, compare

    # target: 5 verbmem items, 3 knowmem items; the attack trained on verbmem items 1 and 3
    target = tmp_path / "target" / "MUSE_EVAL.json"
    target.parent.mkdir()
    target.write_text(json.dumps(muse_eval([0.9, 0.1, 0.7, 0.3, 0.5], [0.6, 0.4, 0.8], [])))
    before = muse_eval([0.2, 0.1, 0.3], [0.1, 0.0, 0.2], [1, 3])  # kept items 0, 2, 4
    (tmp_path / "MUSE_EVAL.json").write_text(json.dumps(before))
    cfg = OmegaConf.create(
        {"seed": 0, "attack": {"target_eval": str(target)}, "eval": {"suites": {"muse": {}}}}
    )
    attack = Attack(cfg)
    attack.benchmark, attack.excluded_forget_indices = "muse", lambda: [1, 3]
    levels = attack.target(tmp_path)
    assert levels["forget_verbmem_ROUGE"] == pytest.approx((0.9 + 0.7 + 0.5) / 3)  # 0.7
    assert levels["forget_knowmem_ROUGE"] == pytest.approx((0.6 + 0.4 + 0.8) / 3)  # 0.6
    res = compare(
        {"muse": {"forget_verbmem_ROUGE": 0.2, "forget_knowmem_ROUGE": 0.1}},
        {"muse": {"forget_verbmem_ROUGE": 0.45, "forget_knowmem_ROUGE": 0.35}},
        levels,
    )
    # verbmem: (0.45 - 0.2) / (0.7 - 0.2) = 0.5; knowmem: (0.35 - 0.1) / (0.6 - 0.1) = 0.5
    assert res["summary"]["muse/forget_verbmem_ROUGE_recovered"] == pytest.approx(0.5)
    assert res["summary"]["muse/forget_knowmem_ROUGE_recovered"] == pytest.approx(0.5)
    assert res["recovery"]["forget_verbmem_ROUGE"]["target"] == pytest.approx(0.7)
    # the same items excluded from a TOFU sample do not touch MUSE's levels
    attack.benchmark = "tofu"
    with pytest.raises(
        ConfigError, match="has 5 items for forget_verbmem_ROUGE, this evaluation has 3"
    ):
        attack.target(tmp_path)
