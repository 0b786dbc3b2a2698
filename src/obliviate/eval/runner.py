"""``src/eval.py``: evaluate one model on TOFU and write TOFU_EVAL.json / TOFU_SUMMARY.json."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from obliviate.config import check_numeric_settings, require_task_name
from obliviate.data import tofu
from obliviate.data.formatting import ChatFormat, QAEncoder, loaded_pad_id, prepare_tokenizer
from obliviate.eval import retain_log as RL
from obliviate.eval.data import load_eval_data
from obliviate.eval.scoring import is_main_process
from obliviate.eval.tofu_eval import EvalSettings, evaluate_model, format_table, summary
from obliviate.models.loading import check_model_path, load_model, load_tokenizer
from obliviate.protocol import protocol_from
from obliviate.utils.dist import launched
from obliviate.utils.io import (
    atomic_write_json,
    atomic_write_text,
    check_writable,
    guard_output_dir,
)
from obliviate.utils.receipt import make_receipt, rows_sha256, weights_fingerprint

log = logging.getLogger("obliviate")
RESULT_FILES = ("TOFU_EVAL.json", "TOFU_SUMMARY.json")


def settings_from_cfg(cfg: DictConfig) -> EvalSettings:
    return EvalSettings(
        forget_split=str(cfg.forget_split),
        retain_split=f"retain{100 - tofu.split_percent(cfg.forget_split, 'forget'):02d}",
        model_name=str(cfg.model.name),
        max_items=cfg.eval.get("max_items"),
        utility_items=cfg.eval.get("utility_items"),
        max_new_tokens=int(cfg.eval.max_new_tokens),
        batch_size=int(cfg.eval.batch_size or (64 if torch.cuda.is_available() else 32)),
        retain_logs_path=cfg.get("retain_logs_path"),
        protocol=protocol_from(cfg.eval.get("protocol"), "eval.protocol"),
        generation_batch_size=int(
            cfg.eval.get("generation_batch_size") or (512 if torch.cuda.is_available() else 64)
        ),
    )


def eval_device() -> torch.device:
    """This process's device; under a distributed launcher (WORLD_SIZE > 1) the process group
    is set up so that evaluation shards its items across the processes."""
    if launched()[1] > 1:
        from accelerate import PartialState

        return PartialState().device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_eval(cfg: DictConfig) -> Path:
    # Checks first: names, splits, paths, retain log, output folder. Nothing is loaded yet.
    require_task_name(cfg)
    check_numeric_settings(cfg)  # lengths, batch sizes, item caps
    settings = settings_from_cfg(cfg)
    tofu.check_holdout(cfg.forget_split, cfg.get("holdout_split"))
    source = tofu.TofuSource.from_config(cfg)
    source.check_folder(
        [
            f"{cfg.forget_split}_perturbed",
            "retain_perturbed",
            "real_authors_perturbed",
            "world_facts_perturbed",
        ]
    )
    model_path = cfg.model.model_args.get("pretrained_model_name_or_path")
    check_model_path(model_path)
    out = guard_output_dir(Path(cfg.paths.output_dir), RESULT_FILES, bool(cfg.overwrite))
    retain_log = (
        RL.load_retain_log(settings.retain_logs_path) if settings.retain_logs_path else None
    )
    check_writable(out)

    data, files = load_eval_data(
        source, settings.forget_split, cfg.get("holdout_split"), settings.notes
    )
    if retain_log is not None:  # validate before the expensive part
        n_f = len(data["forget"][: settings.max_items] if settings.max_items else data["forget"])
        RL.retain_truth_ratios(
            retain_log, settings.retain_logs_path, settings.forget_split, n_f, settings.max_items
        )

    fmt = ChatFormat.from_config(cfg.model.template)
    tokenizer = load_tokenizer(cfg.model)
    mask_id = settings.protocol.mask_id(loaded_pad_id(tokenizer))  # before our pad is set
    tokenizer = prepare_tokenizer(tokenizer, fmt)
    model = load_model(cfg.model)
    model.to(eval_device())
    encoder = QAEncoder(
        tokenizer,
        fmt,
        max_length=int(cfg.data.max_length),
        mask_id=mask_id,
    )

    t0 = time.time()
    res = evaluate_model(model, encoder, data, settings, retain_log)
    seconds = time.time() - t0

    if not is_main_process():
        return out
    write_results(
        out,
        res,
        cfg,
        extra_receipt={
            "model": model_path or f"built-in {cfg.model.name}",
            "model_weights": weights_fingerprint(model_path) if model_path else None,
            "data_files": files,
            "eval_seconds": round(seconds, 2),
            "eval_protocol": settings.protocol.name,
        },
        data=data,
    )
    print(format_table(res))
    for note in settings.notes:
        print(f"note: {note}")
    if res["forget_quality"]["agg_value"] is None:
        print(f"note: {res['forget_quality']['note']}")
    return out


def write_results(out: Path, res: dict, cfg: DictConfig, extra_receipt: dict, data: dict) -> None:
    """Receipt and config first, the result files last (each atomic), so a crash never leaves
    result files that look complete."""
    atomic_write_text(out / "eval_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    receipt = make_receipt(
        int(cfg.seed), {k: rows_sha256(v) for k, v in data.items()}, **extra_receipt
    )
    atomic_write_json(out / "eval_receipt.json", receipt)
    atomic_write_json(out / "TOFU_EVAL.json", res)
    atomic_write_json(out / "TOFU_SUMMARY.json", summary(res))
