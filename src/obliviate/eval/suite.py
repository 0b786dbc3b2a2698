"""Evaluation suites: what ``src/eval.py`` (and evaluation during training) runs on one model.

``eval`` is a Hydra config group. Each option (``configs/eval/<name>.yaml``, package ``eval``)
declares its suite under ``eval.suites.<name>._target_`` next to its own settings, so
``eval=[tofu,lm_eval]`` merges two options and runs both on the same loaded model. A suite is a
class with:

- ``name`` and ``result_files`` (class attributes: the output folder is guarded before any
  suite is built),
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
