"""The training story shared by finetuning and unlearning:
validate -> data -> model -> trainer -> train -> save (model, tokenizer, config, receipt)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback, set_seed

from obliviate import config as C
from obliviate.data import tofu
from obliviate.data.collate import PairCollator
from obliviate.data.datasets import ForgetRetainDataset, QADataset, encode_rows
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.errors import ConfigError
from obliviate.methods.base import reference_logps
from obliviate.models.loading import check_model_path, load_model, load_tokenizer
from obliviate.utils.io import atomic_write_json, atomic_write_text, check_writable
from obliviate.utils.receipt import make_receipt, rows_sha256

log = logging.getLogger("obliviate")
RUN_MARKERS = (
    "config.json",
    "model.safetensors",
    "receipt.json",
    "trainer_log.txt",
    "obliviate_config.yaml",
)


def run_training(cfg: DictConfig) -> Path:
    # 1. Everything a user can get wrong is checked before data or weights are touched.
    C.require_task_name(cfg)
    mode = cfg.mode
    method_cls = C.method_class(cfg)
    if getattr(method_cls, "mode", mode) != mode:
        raise ConfigError(
            f"trainer={method_cls.__name__} is a {method_cls.mode} method but this is a {mode} config; "
            + (
                "use --config-name=train.yaml"
                if method_cls.mode == "finetune"
                else "use --config-name=unlearn.yaml"
            )
        )
    margs = C.method_args(cfg, method_cls)
    source = tofu.TofuSource(str(cfg.tofu_data))
    if mode == "unlearn":
        tofu.check_split_pair(cfg.forget_split, cfg.retain_split)
        splits = [cfg.forget_split, cfg.retain_split, "full"]
    else:
        splits = [str(cfg.train_split)]
    source.check_folder(splits)
    check_model_path(cfg.model.model_args.get("pretrained_model_name_or_path"))
    out = prepare_output_dir(
        Path(cfg.paths.output_dir),
        bool(cfg.overwrite),
        cfg.trainer.args.get("resume_from_checkpoint"),
    )

    # 2. Data (validated; forget/retain author-disjoint and complementary).
    rows = {s: source.load(s) for s in splits}
    for s, r in rows.items():
        tofu.validate_rows(r, s)
    if mode == "unlearn":
        tofu.check_disjoint(
            rows[cfg.forget_split],
            rows[cfg.retain_split],
            rows["full"],
            (cfg.forget_split, cfg.retain_split),
        )
    n_train = len(rows[cfg.forget_split if mode == "unlearn" else cfg.train_split])
    bf16 = str(cfg.model.model_args.get("dtype")) == "bfloat16" and torch.cuda.is_available()
    targs = C.training_arguments(cfg, n_train, bf16_default=bf16)
    group = C.fuse_accumulation(cfg, targs)

    # 3. Model and tokenizer.
    set_seed(int(cfg.seed))
    fmt = ChatFormat.from_config(cfg.model.template)
    tokenizer = prepare_tokenizer(load_tokenizer(cfg.model), fmt)
    model = load_model(cfg.model)
    encoder = QAEncoder(tokenizer, fmt, max_length=int(cfg.data.max_length))

    # 4. Datasets, tokenised once.
    if mode == "unlearn":
        forget = encode_rows(encoder, rows[cfg.forget_split])
        retain = encode_rows(encoder, rows[cfg.retain_split])
        if method_cls.needs_ref_logps:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            model.to(device)
            for item, lp in zip(
                forget, reference_logps(model, forget, tokenizer.pad_token_id), strict=True
            ):
                item["ref_logp"] = lp
        train_ds: Any = ForgetRetainDataset(forget, retain, seed=int(cfg.seed))
    else:
        train_ds = QADataset(encode_rows(encoder, rows[cfg.train_split]))

    # 5. Trainer.
    eval_hook = None
    if targs.eval_strategy != "no":
        from obliviate.eval.hook import make_training_eval_hook

        eval_hook = make_training_eval_hook(cfg, tokenizer, encoder)
    trainer = method_cls(
        model=model,
        args=targs,
        train_dataset=train_ds,
        eval_dataset=train_ds if eval_hook else None,  # never read: evaluate() runs the TOFU hook
        data_collator=PairCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        method_args=margs,
        eval_hook=eval_hook,
        callbacks=[EpochCallback(train_ds), TrainerLogFile(out / "trainer_log.txt")],
    )
    trainer.loss_group_size = group
    log.info(
        "world size %d, per-device batch %d, accumulation %d, effective batch %d, %d training items",
        targs.world_size,
        targs.per_device_train_batch_size,
        targs.gradient_accumulation_steps,
        targs.per_device_train_batch_size * targs.gradient_accumulation_steps * targs.world_size,
        n_train,
    )
    if group:
        log.info(
            "fused accumulation: %d micro-batches of %d per pass (trainer.fuse_accumulation=false to turn off)",
            targs.per_device_train_batch_size // group,
            group,
        )

    # 6. Train and save.
    trainer.train(resume_from_checkpoint=targs.resume_from_checkpoint)
    if trainer.is_world_process_zero():
        trainer.save_model(str(out))
        resolved = OmegaConf.to_yaml(cfg, resolve=True)
        atomic_write_text(out / "obliviate_config.yaml", resolved)
        atomic_write_json(
            out / "receipt.json",
            make_receipt(
                int(cfg.seed),
                {s: rows_sha256(r) for s, r in rows.items()},
                mode=mode,
                method=method_cls.__name__,
                method_args=vars(margs),
                start_model=cfg.model.model_args.get("pretrained_model_name_or_path")
                or f"built-in {cfg.model.name}",
                world_size=targs.world_size,
                global_steps=trainer.state.global_step,
            ),
        )
    return out


def prepare_output_dir(out: Path, overwrite: bool, resume: Any) -> Path:
    """Refuse to mix a new run into an old one; ``overwrite=true`` clears the folder first."""
    if out.exists() and any(out.iterdir()) and not resume:
        if not overwrite:
            raise ConfigError(
                f"run folder '{out}' already exists and is not empty; pass overwrite=true to replace it, "
                "or choose another task_name"
            )
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:
            shutil.rmtree(out)
    check_writable(out)
    return out


class EpochCallback(TrainerCallback):
    """Tells the forget/retain dataset which epoch starts, so the retain pairing is redrawn."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(int(round(state.epoch or 0)))


class TrainerLogFile(TrainerCallback):
    """``trainer_log.txt``: one readable line per logged step (main process only)."""

    FIRST = ("loss", "forget_loss", "retain_loss", "learning_rate", "grad_norm")

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        rest = sorted(k for k in logs if k not in self.FIRST and k != "epoch")
        keys = [k for k in self.FIRST if k in logs] + rest
        parts = [f"step={state.global_step}", f"epoch={state.epoch or 0:.2f}"]
        parts += [f"{k}={_fmt(logs[k])}" for k in keys]
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(" ".join(parts) + "\n")


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)
