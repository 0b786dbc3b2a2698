"""Evaluation suites: what ``src/eval.py`` (and evaluation during training) runs on one model.

``eval`` is a Hydra config group. Each option (``configs/eval/<name>.yaml``, package ``eval``)
declares its suite under ``eval.suites.<name>._target_`` next to its own settings, so
``eval=[tofu,lm_eval]`` merges two options and runs both on the same loaded model. A suite is a
class with:

- ``name`` and ``result_files`` (class attributes: the output folder is guarded before any
  suite is built), and ``exclude_key`` for a benchmark with forget items: the config key of the
  forget items left out of its forget-side metrics (an attack that trains on some sets it),
- ``__init__(cfg)``: every check and the data, loaded and validated (retain logs too) — no model,
- ``checksums`` and ``receipt`` (instance attributes, filled by ``__init__``): sha256 of the data
  it read and what else the run's receipt should hold (data files, item counts),
- ``run(model, tokenizer) -> SuiteResult``: evaluate (every process, when sharded); it writes
  nothing — the runner writes the receipt first and the result files last, on the main process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from omegaconf import DictConfig

from obliviate.config import target_class
from obliviate.errors import ConfigError


@dataclass
class SuiteResult:
    files: dict[str, Any]  # result file name -> JSON object, e.g. TOFU_EVAL.json
    summary: dict[str, Any]  # flat headline metric -> value (training log, obliviate compare)
    report: str = ""  # what the terminal shows
    notes: list[str] = field(default_factory=list)  # caveats printed after the report


class EvalSuite(Protocol):
    name: str
    result_files: tuple[str, ...]
    checksums: dict[str, str]
    receipt: dict[str, Any]

    def __init__(self, cfg: DictConfig) -> None: ...

    def run(self, model: Any, tokenizer: Any) -> SuiteResult: ...


def metrics_result(
    prefix: str,
    res: dict[str, Any],
    summary: dict[str, Any],
    report: str,
    notes: list[str],
    needs_log: str,
) -> SuiteResult:
    """``<prefix>_EVAL.json`` (every metric, per item) and ``<prefix>_SUMMARY.json``; when the
    metric ``needs_log`` (computed against a retain model's log) has no value, its note, which
    says how to make the log, joins the settings' notes."""
    notes = list(notes)
    if res[needs_log]["agg_value"] is None:
        notes.append(res[needs_log]["note"])
    return SuiteResult(
        files={f"{prefix}_EVAL.json": res, f"{prefix}_SUMMARY.json": summary},
        summary=summary,
        report=report,
        notes=notes,
    )


def check_excluded(key: str, excluded: tuple[int, ...], n_forget: int) -> None:
    """A suite's ``exclude_key`` value: valid forget item indices (numbered after the item cap)
    that leave some to evaluate."""
    bad = [i for i in excluded if not 0 <= i < n_forget]
    if bad:
        raise ConfigError(
            f"{key} has {bad[:5]}, outside the {n_forget} evaluated forget items (0..{n_forget - 1})"
        )
    if len(set(excluded)) >= n_forget:
        raise ConfigError(f"{key} excludes all {n_forget} forget items; leave some to evaluate")


def without_items(rows: list[Any], excluded: tuple[int, ...]) -> list[Any]:
    """``rows`` minus the excluded indices; the kept rows are then numbered 0.. in order (the
    result files list the excluded indices in ``eval_info.excluded_forget_indices``)."""
    drop = set(excluded)
    return [r for i, r in enumerate(rows) if i not in drop]


def suite_classes(cfg: DictConfig) -> list[type]:
    """The suite classes ``cfg.eval.suites`` names, in config order; at least one."""
    suites = (cfg.get("eval") or {}).get("suites") or {}
    if not suites:
        raise ConfigError(
            "no evaluation suite selected (eval.suites is empty); choose one with eval=tofu, "
            "eval=lm_eval or a list such as eval=[tofu,lm_eval]"
        )
    classes = []
    for name, spec in suites.items():
        target = (spec or {}).get("_target_")
        classes.append(target_class(f"eval.suites.{name}._target_", target))
    return classes


def result_files(classes: list[type]) -> tuple[str, ...]:
    return tuple(f for c in classes for f in c.result_files)
