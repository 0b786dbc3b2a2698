"""The retain model's evaluation log: what forget_quality (and privleak) compare against.

Accepts our TOFU_EVAL.json and open-unlearning's (same key names). A log that cannot be
compared item for item with this evaluation is an error that names what differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.errors import ConfigError


def how_to_make(model_name: str, retain_split: str) -> str:
    return (
        f"evaluate a model trained only on {retain_split} into saves/eval/tofu_{model_name}_{retain_split} "
        f"(obliviate eval --config-name=eval.yaml experiment=eval/tofu/default ... "
        f"model.model_args.pretrained_model_name_or_path=<retain model> "
        f"paths.output_dir=saves/eval/tofu_{model_name}_{retain_split}) and pass "
        f"retain_logs_path=saves/eval/tofu_{model_name}_{retain_split}/TOFU_EVAL.json"
    )


def load_retain_log(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"retain_logs_path={str(path)!r} does not exist; pass the retain model's TOFU_EVAL.json"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"retain_logs_path={str(path)!r} is not valid JSON ({e.msg})") from e


def retain_truth_ratios(
    log: dict[str, Any], path: str, forget_split: str, n_items: int, max_items: Any
) -> np.ndarray:
    """Per-item forget truth ratios of the retain model, checked against this evaluation."""
    info = log.get("eval_info") or {}
    if info.get("forget_split") not in (None, forget_split):
        raise ConfigError(
            f"retain log {path} was computed on forget_split={info['forget_split']}, this evaluation uses "
            f"{forget_split}; forget_quality compares the same items only"
        )
    if "max_items" in info and info.get("max_items") != max_items:
        raise ConfigError(
            f"retain log {path} was computed with eval.max_items={info.get('max_items')}, this evaluation uses "
            f"{max_items}; use the same item cap on both sides"
        )
    tr = log.get("forget_truth_ratio")
    by_index = tr.get("value_by_index") if isinstance(tr, dict) else None
    if not by_index:
        raise ConfigError(
            f"retain log {path} has no per-item truth ratios (forget_truth_ratio.value_by_index)"
        )
    if len(by_index) != n_items:
        raise ConfigError(
            f"retain log {path} has {len(by_index)} per-item truth ratios, this evaluation has {n_items} "
            f"forget items ({forget_split}); the log is from another split or size"
        )
    try:
        values = [by_index[str(i)]["score"] for i in range(n_items)]
    except KeyError as e:
        raise ConfigError(f"retain log {path}: per-item truth ratio for item {e} is missing") from e
    if any(v is None for v in values):
        raise ConfigError(f"retain log {path} has null per-item truth ratios")
    return np.asarray(values, dtype=np.float64)


def retain_mia_auc(log: dict[str, Any]) -> float | None:
    entry = log.get("mia_min_k")
    if isinstance(entry, dict) and entry.get("agg_value") is not None:
        return float(entry["agg_value"])
    return None
