"""How much of the forgotten knowledge an attack brought back: pure formulas.

For a forget-side metric m where higher means "remembers more" (forget_Q_A_Prob, ROUGE-L):

    recovered_share = (m_after - m_before) / (m_target - m_before)

0 = nothing came back, 1 = back at the level of the target (the model before unlearning),
negative = the attack removed even more. Undefined (None) when the target is not above the
unlearned model by at least ``MIN_GAP`` (the metrics live in [0, 1]; a smaller gap is numerical
noise, and dividing by it would report any change as a huge "recovery").
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError

MIN_GAP = 1e-3
#: the forget-side metrics whose recovery is reported, and the per-item field of TOFU_EVAL.json
#: holding each item's value (to compute the target's level on exactly the evaluated items)
RECOVERY_METRICS: dict[str, str] = {
    "forget_Q_A_Prob": "prob",
    "forget_Q_A_ROUGE": "rougeL_recall",
}


def recovered_share(
    before: float | None, after: float | None, target: float | None
) -> float | None:
    """``(after - before) / (target - before)``, or None when any value is missing or the
    target does not exceed ``before`` by ``MIN_GAP`` (nothing was forgotten)."""
    if before is None or after is None or target is None:
        return None
    gap = target - before
    if not gap >= MIN_GAP or not math.isfinite(gap):
        return None
    return (after - before) / gap


def item_mean(metric_entry: dict[str, Any], field: str, indices: Iterable[int]) -> float:
    """Mean of ``value_by_index[i][field]`` over ``indices`` (a TOFU_EVAL.json metric entry)."""
    by_index = metric_entry.get("value_by_index") or {}
    values = []
    for i in indices:
        item = by_index.get(str(i))
        if item is None or item.get(field) is None:
            raise KeyError(i)
        values.append(float(item[field]))
    if not values:
        raise ValueError("no items to average")
    return sum(values) / len(values)


def target_levels(
    path: str | Path, n_items: int, excluded: Iterable[int] = ()
) -> tuple[dict[str, float], list[int]]:
    """The target's forget-side levels from its TOFU_EVAL.json, averaged over the same items
    the attack evaluated: the first ``n_items`` forget items minus ``excluded`` (the relearning
    sample). Returns (metric -> level, the item indices used)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"attack.target_eval={str(path)!r} does not exist; pass the target model's TOFU_EVAL.json"
        )
    res = json.loads(path.read_text())
    drop = set(excluded)
    kept = [i for i in range(n_items) if i not in drop]
    levels = {}
    for metric, field in RECOVERY_METRICS.items():
        entry = res.get(metric) or {}
        n = entry.get("n")
        if n != n_items:
            raise ConfigError(
                f"attack.target_eval={str(path)!r} has {n} items for {metric}, this evaluation has "
                f"{n_items} forget items; evaluate the target with the same split and eval.max_items"
            )
        try:
            levels[metric] = item_mean(entry, field, kept)
        except (KeyError, ValueError) as e:
            raise ConfigError(
                f"attack.target_eval={str(path)!r}: per-item {metric} {field} missing for item {e}"
            ) from e
    return levels, kept
