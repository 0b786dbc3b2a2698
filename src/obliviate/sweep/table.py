"""The rows of a sweep's comparison: one per point (its swept overrides, state, evaluation
metrics and training cost), read from the sweep folder's ``sweep.json`` and each point's files.

Metrics come from the evaluation folder's ``*_SUMMARY.json`` files (TOFU and MUSE keys as they
are, any other suite's as ``<suite>/<key>``), ``forget_Q_A_PARA_Prob`` from ``TOFU_EVAL.json``
(the harmonic-mean rule uses it), and every ``ATTACK_<name>.json`` ``summary`` as
``attack/<name>/<metric>``. Cost comes from the training receipt's ``efficiency`` block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError
from obliviate.sweep.points import EVAL_DIR, SWEEP_FILE

PLAIN_SUITES = ("TOFU", "MUSE")  # their summary keys are shown without a prefix
COST_KEYS = (
    ("train_seconds", "train_s"),
    ("seconds_per_step", "s/step"),
    ("tokens_per_second", "tokens/s"),
    ("peak_memory_mib", "peak_MiB"),
    ("train_flops_estimate", "FLOPs"),
)


def is_sweep_folder(path: Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def eval_metrics(eval_dir: Path) -> dict[str, Any]:
    """Flat metric name -> value of one evaluation folder (empty when it has no results)."""
    out: dict[str, Any] = {}
    for f in sorted(eval_dir.glob("*_SUMMARY.json")):
        suite = f.name.removesuffix("_SUMMARY.json")
        prefix = "" if suite in PLAIN_SUITES else suite.lower() + "/"
        for k, v in _read(f).items():
            if isinstance(v, (int, float)) or v is None:
                out[prefix + k] = v
    tofu = _read(eval_dir / "TOFU_EVAL.json")
    if "forget_Q_A_PARA_Prob" in tofu:
        out["forget_Q_A_PARA_Prob"] = (tofu["forget_Q_A_PARA_Prob"] or {}).get("agg_value")
    for f in sorted(eval_dir.glob("ATTACK_*.json")):
        name = f.stem.removeprefix("ATTACK_")
        for k, v in (_read(f).get("summary") or {}).items():
            if isinstance(v, (int, float)) or v is None:
                out[f"attack/{name}/{k}"] = v
    return out


def cost(run_dir: Path) -> dict[str, Any]:
    """The training receipt's efficiency numbers (None where the receipt has none)."""
    eff = _read(run_dir / "receipt.json").get("efficiency") or {}
    return {short: eff.get(key) for key, short in COST_KEYS}


def sweep_rows(sweep_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(sweep.json, one row per point: name, status, folders, metrics, cost)."""
    sweep_dir = Path(sweep_dir)
    if not is_sweep_folder(sweep_dir):
        raise ConfigError(
            f"'{sweep_dir}' holds no {SWEEP_FILE}; run the sweep first (train -m ...)"
        )
    sweep = _read(sweep_dir / SWEEP_FILE)
    rows = []
    for p in sweep.get("points", []):
        run_dir = sweep_dir / p["run_dir"]
        label = ",".join(short_override(o) for o in p.get("overrides", [])) or p["name"]
        metrics = eval_metrics(run_dir / EVAL_DIR) if (run_dir / EVAL_DIR).is_dir() else {}
        rows.append({"name": label, "kind": "point", "status": p.get("status"),
                     "run_dir": str(run_dir), "overrides": p.get("overrides", []),
                     **metrics, **cost(run_dir)})  # fmt: skip
    return sweep, rows


def model_row(eval_dir: Path, name: str, kind: str) -> dict[str, Any]:
    """A reference model's row (target or retain) from its evaluation folder."""
    eval_dir = Path(eval_dir)
    if eval_dir.is_file():  # retain_logs_path names the TOFU_EVAL.json itself
        eval_dir = eval_dir.parent
    metrics = eval_metrics(eval_dir)
    if not metrics:
        raise ConfigError(f"'{eval_dir}' holds no *_SUMMARY.json; evaluate the {kind} model first")
    return {"name": name, "kind": kind, "status": "reference", "run_dir": str(eval_dir), **metrics}


def short_override(override: str) -> str:
    """``trainer.method_args.beta=2.5`` -> ``beta=2.5`` (the table's point labels)."""
    key, _, value = override.lstrip("+~").partition("=")
    return f"{key.rsplit('.', 1)[-1]}={value}"


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}
