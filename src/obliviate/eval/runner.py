"""``src/eval.py``: evaluate one model with the selected suites (``eval=tofu`` by default) and
write each suite's result files, the resolved config and a receipt."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from obliviate.config import check_numeric_settings, require_task_name
from obliviate.eval.scoring import is_main_process
from obliviate.eval.suite import SuiteResult, result_files, suite_classes
from obliviate.models.loading import check_model_path, load_model, load_tokenizer
from obliviate.utils.dist import launched
from obliviate.utils.io import (
    atomic_write_json,
    atomic_write_text,
    check_writable,
    guard_output_dir,
)
from obliviate.utils.receipt import make_receipt, weights_fingerprint

log = logging.getLogger("obliviate")


def eval_device() -> torch.device:
    """This process's device; under a distributed launcher (WORLD_SIZE > 1) the process group
    is set up so that evaluation shards its items across the processes."""
    if launched()[1] > 1:
        from accelerate import PartialState

        return PartialState().device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_eval(cfg: DictConfig) -> Path:
    # Checks first: names, settings, the output folder, then each suite's own checks and data
    # (splits, retain logs). The model is loaded once every check has passed.
    require_task_name(cfg)
    check_numeric_settings(cfg)
    classes = suite_classes(cfg)
    model_path = cfg.model.model_args.get("pretrained_model_name_or_path")
    check_model_path(model_path)
    out = guard_output_dir(Path(cfg.paths.output_dir), result_files(classes), bool(cfg.overwrite))
    check_writable(out)
    suites = [cls(cfg) for cls in classes]

    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model)
    model.to(eval_device())

    t0 = time.time()
    results = {s.name: s.run(model, tokenizer) for s in suites}
    seconds = time.time() - t0

    if not is_main_process():
        return out
    receipt = {
        "model": model_path or f"built-in {cfg.model.name}",
        "model_weights": weights_fingerprint(model_path) if model_path else None,
        "eval_seconds": round(seconds, 2),
    }
    write_results(out, cfg, suites, results, receipt)
    for res in results.values():
        print(res.report)
        for note in res.notes:
            print(f"note: {note}")
    return out


def write_results(
    out: Path, cfg: DictConfig, suites: list[Any], results: dict[str, SuiteResult], extra: dict
) -> None:
    """Receipt and config first, the result files last (each atomic), so a crash never leaves
    result files that look complete."""
    atomic_write_text(out / "eval_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    checksums = {k: v for s in suites for k, v in _prefixed(s, s.checksums).items()}
    details = {k: v for s in suites for k, v in s.receipt.items()}
    atomic_write_json(
        out / "eval_receipt.json",
        make_receipt(int(cfg.seed), checksums, suites=[s.name for s in suites], **details, **extra),
    )
    for res in results.values():
        for name, obj in res.files.items():
            atomic_write_json(out / name, obj)


def _prefixed(suite: Any, checksums: dict[str, str]) -> dict[str, str]:
    """TOFU's keys stay bare (as before suites existed); other suites' get their name."""
    return (
        checksums
        if suite.name == "tofu"
        else {f"{suite.name}/{k}": v for k, v in checksums.items()}
    )
