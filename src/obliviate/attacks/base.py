"""What every attack shares: building one from the config, the before/after run, the report.

An attack is a class named by ``attack._target_`` (configs/attack/<name>.yaml), built from the
whole config: its ``__init__`` does every check and loads its data, before any model is loaded.
``run(model, tokenizer, evaluate, out)`` gets the loaded model and a callback that runs the
selected benchmark suites on a model into a folder; it never writes into the model's folder.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig, OmegaConf

from obliviate.attacks.recovery import (
    RECOVERY,
    RECOVERY_METRICS,
    benchmark_of,
    recovered_share,
    target_levels,
)
from obliviate.errors import ConfigError
from obliviate.utils.io import atomic_write_json

#: (model, output folder) -> {suite name: its summary dict}
Evaluate = Callable[[torch.nn.Module, Path], dict[str, dict[str, Any]]]

#: the TOFU numbers an attack's flat summary carries (before / after each); other suites' summary
#: keys all go in, prefixed with the suite's name
TOFU_SUMMARY_KEYS = (
    "forget_quality",
    "model_utility",
    "forget_truth_ratio",
    "forget_Q_A_Prob",
    "forget_Q_A_ROUGE",
)


def report_file(name: str) -> str:
    return f"ATTACK_{name}.json"


def build_attack(cfg: DictConfig) -> Attack | None:
    """The attack ``cfg.attack`` names (None without one); its checks run here."""
    section = cfg.get("attack")
    if not section:
        return None
    target = section.get("_target_")
    if not target:
        raise ConfigError("attack has no _target_; pick one with attack=relearn|quantize|rephrase")
    from obliviate.config import target_class

    return target_class("attack._target_", target)(cfg)


class Attack:
    """One attack; subclasses set ``name`` and implement ``run``."""

    name: ClassVar[str] = ""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.seed = int(cfg.attack.get("seed") if cfg.attack.get("seed") is not None else cfg.seed)
        self.benchmark: str | None = None  # where the forget items it trains on come from
        self.target_eval = cfg.attack.get("target_eval")
        self.target_benchmark = None
        if self.target_eval:
            self.target_benchmark = benchmark_of(str(self.target_eval))
            if self.target_benchmark not in ((cfg.get("eval") or {}).get("suites") or {}):
                raise ConfigError(
                    f"attack.target_eval={self.target_eval!r} is a {self.target_benchmark} "
                    f"evaluation but eval={self.target_benchmark} is not selected; add it to eval"
                )

    def excluded_forget_indices(self) -> list[int]:
        """Forget items the attack uses itself, so no reported metric may count them."""
        return []

    def settings(self) -> dict[str, Any]:
        raw = OmegaConf.to_container(self.cfg.attack, resolve=True)
        return {k: v for k, v in raw.items() if k != "_target_"}  # type: ignore[union-attr]

    def run(
        self, model: torch.nn.Module, tokenizer: Any, evaluate: Evaluate, out: Path
    ) -> dict[str, Any]:
        raise NotImplementedError

    def base_report(self) -> dict[str, Any]:
        return {
            "attack": self.name,
            "settings": self.settings(),
            "seed": self.seed,
            "forget_items_used": self.excluded_forget_indices(),
        }

    def target(self, out: Path) -> dict[str, float]:
        """The target's levels on the evaluated forget items of the benchmark of
        ``attack.target_eval`` (empty without one)."""
        if not self.target_eval:
            return {}
        bench = str(self.target_benchmark)
        file, metrics = RECOVERY[bench]
        ours = json.loads((out / file).read_text())
        excluded = self.excluded_forget_indices() if self.benchmark == bench else []
        counts = {
            m.name: int(ours[m.name]["n"]) + (len(excluded) if m.on_trained_items else 0)
            for m in metrics
        }
        return target_levels(str(self.target_eval), counts, excluded)


class ModelAttack(Attack):
    """An attack that changes (a copy of) the weights: evaluate the model as it is, attack a
    copy, evaluate the copy into ``<out>/attack_<name>``, compare."""

    def apply(self, model: torch.nn.Module, tokenizer: Any) -> tuple[torch.nn.Module, dict]:
        """The attacked copy of ``model`` and what the attack did (``model`` is unchanged)."""
        raise NotImplementedError

    def run(
        self, model: torch.nn.Module, tokenizer: Any, evaluate: Evaluate, out: Path
    ) -> dict[str, Any]:
        before = evaluate(model, out)
        t0 = time.perf_counter()
        attacked, info = self.apply(copy.deepcopy(model), tokenizer)
        info["attack_seconds"] = round(time.perf_counter() - t0, 2)
        after_dir = out / f"attack_{self.name}"
        after = evaluate(attacked, after_dir)
        report = {**self.base_report(), "info": info, "after_folder": after_dir.name}
        report.update(compare(before, after, self.target(out)))
        report["forget_truth_ratios"] = {  # forget_quality against any retain log, later
            "before": forget_truth_ratios(out),
            "after": forget_truth_ratios(after_dir),
        }
        return report


def compare(
    before: dict[str, dict[str, Any]],
    after: dict[str, dict[str, Any]],
    target: dict[str, float],
) -> dict[str, Any]:
    """before, after, the recovery of the forget-side metrics and the flat summary (TOFU's
    keys bare, every other suite's prefixed with its name, as ``muse/forget_verbmem_ROUGE``)."""
    recovery = {}
    for name, (suite, _) in RECOVERY_METRICS.items():
        b_suite = before.get(suite) or {}
        if name in b_suite:
            b, a, t = b_suite[name], (after.get(suite) or {}).get(name), target.get(name)
            recovery[name] = {
                "before": b,
                "after": a,
                "target": t,
                "recovered_share": recovered_share(b, a, t),
            }
    summary: dict[str, Any] = {}
    for suite, values in before.items():
        keys = TOFU_SUMMARY_KEYS if suite == "tofu" else tuple(values)
        for key in keys:
            if key in values:
                summary[f"{_prefix(suite)}{key}_before"] = values[key]
                summary[f"{_prefix(suite)}{key}_after"] = (after.get(suite) or {}).get(key)
    for name, r in recovery.items():
        if r["recovered_share"] is not None:
            summary[f"{_prefix(RECOVERY_METRICS[name][0])}{name}_recovered"] = r["recovered_share"]
    return {"before": before, "after": after, "recovery": recovery, "summary": summary}


def _prefix(suite: str) -> str:
    return "" if suite == "tofu" else f"{suite}/"


def forget_truth_ratios(folder: Path) -> list[float | None] | None:
    """The per-item forget truth ratios of the TOFU evaluation in ``folder`` (None without)."""
    path = folder / "TOFU_EVAL.json"
    if not path.is_file():
        return None
    by_index = json.loads(path.read_text())["forget_truth_ratio"]["value_by_index"]
    return [by_index[str(i)]["score"] for i in range(len(by_index))]


def write_report(out: Path, report: dict[str, Any], summary_files: list[Path]) -> Path:
    """``ATTACK_<name>.json`` in ``out``, and the flat summary as one ``attack/<name>`` entry in
    each benchmark summary file (e.g. TOFU_SUMMARY.json)."""
    path = out / report_file(report["attack"])
    atomic_write_json(path, report)
    for summary_path in summary_files:
        if summary_path.is_file():
            data = json.loads(summary_path.read_text())
            data[f"attack/{report['attack']}"] = report["summary"]
            atomic_write_json(summary_path, data)
    return path
