"""How much of the forgotten knowledge an attack brought back: pure formulas.

For a forget-side metric m where higher means "remembers more" (TOFU's forget_Q_A_Prob and
forget_Q_A_ROUGE, MUSE's forget_verbmem_ROUGE and forget_knowmem_ROUGE):

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError

MIN_GAP = 1e-3


@dataclass(frozen=True)
class RecoveryMetric:
    """A forget-side metric whose recovery is reported."""

    name: str  # its key in <BENCHMARK>_EVAL.json and in the suite's summary
    field: str  # the per-item field holding each item's value
    #: computed on the forget items a relearning attack may train on, which are then left out
    #: of it (so the target's level is averaged without them too)
    on_trained_items: bool


#: per benchmark (the suite's name): its evaluation file and its recovered metrics
RECOVERY: dict[str, tuple[str, tuple[RecoveryMetric, ...]]] = {
    "tofu": (
        "TOFU_EVAL.json",
        (
            RecoveryMetric("forget_Q_A_Prob", "prob", True),
            RecoveryMetric("forget_Q_A_ROUGE", "rougeL_recall", True),
        ),
    ),
    # verbmem is computed on the verbmem items relearning trains on; knowmem on QA pairs that
    # are never trained on, so it keeps all its items (docs/attacks.md, "MUSE")
    "muse": (
        "MUSE_EVAL.json",
        (
            RecoveryMetric("forget_verbmem_ROUGE", "rougeL_f1", True),
            RecoveryMetric("forget_knowmem_ROUGE", "rougeL_f1", False),
        ),
    ),
}
#: metric name -> (benchmark, metric)
RECOVERY_METRICS: dict[str, tuple[str, RecoveryMetric]] = {
    m.name: (bench, m) for bench, (_, metrics) in RECOVERY.items() for m in metrics
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
    """Mean of ``value_by_index[i][field]`` over ``indices`` (a metric entry of an evaluation
    file)."""
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


def benchmark_of(path: str | Path) -> str:
    """Which benchmark an evaluation file (``attack.target_eval``) holds: the one whose
    recovered metrics are all in it. The file must score every item (the attack picks the
    target's items to match its own), so one that left items out is refused here, before any
    model is loaded."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"attack.target_eval={str(path)!r} does not exist; pass the target model's "
            "TOFU_EVAL.json or MUSE_EVAL.json (or null)"
        )
    try:
        res = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"attack.target_eval={str(path)!r} is not JSON ({e.msg})") from e
    for bench, (_, metrics) in RECOVERY.items():
        if isinstance(res, dict) and all(m.name in res for m in metrics):
            left_out = (res.get("eval_info") or {}).get("excluded_forget_indices")
            if left_out:  # e.g. the "before" of the target's own relearning run
                raise ConfigError(
                    f"attack.target_eval={str(path)!r} left out forget items {left_out}; pass a "
                    "plain evaluation of the target (no attack), which scores every item"
                )
            return bench
    raise ConfigError(
        f"attack.target_eval={str(path)!r} is neither a TOFU_EVAL.json nor a MUSE_EVAL.json; "
        "pass the target model's evaluation file"
    )


def target_levels(
    path: str | Path, counts: dict[str, int], excluded: Iterable[int] = ()
) -> dict[str, float]:
    """The target's level of each metric in ``counts`` from its evaluation file, averaged over
    the items this evaluation scored: the first ``counts[metric]`` items (the excluded ones
    included), minus ``excluded`` (the relearning sample) for metrics computed on trained
    items."""
    path = Path(path)
    res = json.loads(path.read_text())
    drop = set(excluded)
    levels = {}
    for name, n_items in counts.items():
        metric = RECOVERY_METRICS[name][1]
        entry = res.get(name) or {}
        if entry.get("n") != n_items:
            raise ConfigError(
                f"attack.target_eval={str(path)!r} has {entry.get('n')} items for {name}, this "
                f"evaluation has {n_items}; evaluate the target with the same split and item caps"
            )
        kept = [i for i in range(n_items) if not (metric.on_trained_items and i in drop)]
        try:
            levels[name] = item_mean(entry, metric.field, kept)
        except (KeyError, ValueError) as e:
            raise ConfigError(
                f"attack.target_eval={str(path)!r}: per-item {name} {metric.field} missing for item {e}"
            ) from e
    return levels
