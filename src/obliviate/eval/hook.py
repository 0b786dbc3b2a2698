"""Evaluation during training (``trainer.args.eval_strategy=steps``): the TOFU evaluation of
the current weights, written to ``<run>/checkpoint-<step>/evals/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from obliviate.data import tofu
from obliviate.data.formatting import QAEncoder
from obliviate.eval import retain_log as RL
from obliviate.eval.data import load_eval_data
from obliviate.eval.runner import settings_from_cfg, write_results
from obliviate.eval.scoring import is_main_process
from obliviate.eval.tofu_eval import evaluate_model, summary


def make_training_eval_hook(
    cfg: DictConfig, tokenizer: Any, encoder: QAEncoder
) -> Callable[[Any, int], dict[str, float]]:
    settings = settings_from_cfg(cfg)
    settings.progress = False
    source = tofu.TofuSource.from_config(cfg)
    data, files = load_eval_data(
        source, settings.forget_split, cfg.get("holdout_split"), settings.notes
    )
    retain_log = (
        RL.load_retain_log(settings.retain_logs_path) if settings.retain_logs_path else None
    )

    def hook(model: Any, step: int) -> dict[str, float]:
        res = evaluate_model(model, encoder, data, settings, retain_log)
        if is_main_process():
            out = Path(cfg.paths.output_dir) / f"checkpoint-{step}" / "evals"
            write_results(out, res, cfg, {"step": step, "data_files": files}, data)
        return {k: v for k, v in summary(res).items() if v is not None}

    return hook
