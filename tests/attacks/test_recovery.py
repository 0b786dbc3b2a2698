"""The recovered share and the target's level on the evaluated items, worked out by hand."""

from __future__ import annotations

import json

import pytest

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
