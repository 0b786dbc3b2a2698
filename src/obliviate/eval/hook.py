"""Evaluation during training (``trainer.args.eval_strategy=steps``): the selected suites on
the current weights, written to ``<run>/checkpoint-<step>/evals/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from obliviate.eval.runner import write_results
from obliviate.eval.scoring import is_main_process
from obliviate.eval.suite import suite_classes


def make_training_eval_hook(
    cfg: DictConfig, tokenizer: Any
) -> Callable[[Any, int], dict[str, float]]:
    # Data and retain logs are loaded and checked now, before the first training step.
    suites = [cls(cfg) for cls in suite_classes(cfg)]
    for s in suites:
        if hasattr(s, "settings"):
            s.settings.progress = False

    def hook(model: Any, step: int) -> dict[str, float]:
        was_training = model.training
        try:
            results = {s.name: s.run(model, tokenizer) for s in suites}
        finally:
            model.train(was_training)
        if is_main_process():
            out = Path(cfg.paths.output_dir) / f"checkpoint-{step}" / "evals"
            write_results(out, cfg, suites, results, {"step": step})
        logged: dict[str, float] = {}
        for res in results.values():
            logged.update({k: v for k, v in res.summary.items() if isinstance(v, (int, float))})
        return logged

    return hook
