"""The training story shared by finetuning and unlearning:
validate -> data -> model -> trainer -> train -> save (model, tokenizer, config, receipt)."""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback, set_seed

from obliviate import config as C
from obliviate.data import idk, tofu
from obliviate.data.collate import PairCollator
from obliviate.data.datasets import ForgetRetainDataset, QADataset, encode_rows
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.errors import ConfigError
from obliviate.methods.base import reference_logps
from obliviate.models.loading import check_model_path, load_model, load_tokenizer
from obliviate.models.lora import MERGED_DIR, apply_lora, lora_settings, save_merged
from obliviate.utils.io import WRITE_PROBE, atomic_write_json, atomic_write_text, check_writable
from obliviate.utils.receipt import make_receipt, rows_sha256

log = logging.getLogger("obliviate")


def run_training(cfg: DictConfig, callbacks: list[TrainerCallback] | None = None) -> Path:
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
    lora = lora_settings(cfg.model)  # None = train all weights
    C.check_trainer_args(cfg)
    resume = cfg.trainer.args.get("resume_from_checkpoint")
    source = tofu.TofuSource.from_config(cfg)
    if mode == "unlearn":
        tofu.check_split_pair(cfg.forget_split, cfg.retain_split)
        splits = [cfg.forget_split, cfg.retain_split, "full"]
    else:
        splits = [str(cfg.train_split)]
    source.check_folder(splits)
    check_model_path(cfg.model.model_args.get("pretrained_model_name_or_path"))
    out = prepare_output_dir(Path(cfg.paths.output_dir), bool(cfg.overwrite), resume)
    resume = resolve_resume(resume, out)
    warn_if_multi_gpu_without_launcher()

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
    if C.current_world_size() > 1 and targs.world_size == 1:
        raise ConfigError(
            f"launched as {C.current_world_size()} processes but no process group formed, so each would train "
            "alone into the same folder; on CPU use ACCELERATE_USE_CPU=true accelerate launch --config_file "
            "configs/accelerate/default_config.yaml --num_processes N src/train.py ..."
        )

    # 3. Model and tokenizer.
    set_seed(int(cfg.seed))
    fmt = ChatFormat.from_config(cfg.model.template)
    tokenizer = prepare_tokenizer(load_tokenizer(cfg.model), fmt)
    model = load_model(cfg.model)
    if lora is not None:
        model = apply_lora(model, lora)
    encoder = QAEncoder(tokenizer, fmt, max_length=int(cfg.data.max_length))

    # 4. Datasets, tokenised once.
    if mode == "unlearn":
        forget = encode_rows(encoder, rows[cfg.forget_split])
        retain = encode_rows(encoder, rows[cfg.retain_split])
        alternate = None
        if getattr(method_cls, "needs_refusals", False):  # IdkDPO: a refusal per forget question
            refusals = idk.load_refusals(getattr(margs, "idk_path", None))
            alternate = encode_rows(
                encoder, idk.refusal_rows(rows[cfg.forget_split], refusals, seed=int(cfg.seed))
            )
        if method_cls.needs_ref_logps:
            model.to(targs.device)  # this rank's device (the launcher has set it)
            # No more rows per pass than a training pass has forget rows: without gradients this
            # pass then stays below training's peak memory (NPO costs what SimNPO costs).
            ref_rows = targs.per_device_train_batch_size
            for items in (forget, alternate or []):
                for item, lp in zip(
                    items,
                    reference_logps(model, items, tokenizer.pad_token_id, ref_rows),
                    strict=True,
                ):
                    item["ref_logp"] = lp
        train_ds: Any = ForgetRetainDataset(forget, retain, seed=int(cfg.seed), alternate=alternate)
    else:
        train_ds = QADataset(encode_rows(encoder, rows[cfg.train_split]))

    # 5. Trainer.
    guard = FiniteLossGuard()
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
        ref_model_factory=lambda: load_model(cfg.model),  # only ZeRO-3 needs a second load
        callbacks=[
            EpochCallback(train_ds),
            TrainerLogFile(out / "trainer_log.txt"),
            guard,
            *(callbacks or []),
        ],
    )
    trainer.loss_group_size = group
    if cfg.trainer.get("record_data_order"):
        trainer.data_order_file = out / f"data_order.rank{targs.process_index}.jsonl"
    guard.trainer = trainer
    # The user's micro-batch and accumulation (fusion only regroups them into fewer passes).
    fused = targs.per_device_train_batch_size // group if group else 1
    micro, accum = (
        targs.per_device_train_batch_size // fused,
        targs.gradient_accumulation_steps * fused,
    )
    log.info(
        "world size %d (%s), per-device batch %d, accumulation %d, effective batch %d, "
        "%d training items",
        targs.world_size,
        _parallelism(trainer),
        micro,
        accum,
        micro * accum * targs.world_size,
        n_train,
    )
    if group:
        log.info(
            "fused accumulation: %d micro-batches of %d per pass (trainer.fuse_accumulation=false to turn off)",
            fused,
            group,
        )

    # 6. Train and save.
    trainer.train(resume_from_checkpoint=resume)
    if guard.bad_step is not None:
        raise TrainingDiverged(guard.describe(out))
    # Every rank calls save_model: under DeepSpeed ZeRO-3 / FSDP it gathers the sharded weights
    # collectively (rank 0 alone would wait forever); Trainer writes on the main process only.
    trainer.save_model(str(out))  # with LoRA: the adapter
    if trainer.is_world_process_zero():
        if lora is not None and lora.merge:
            save_merged(trainer.model, out / MERGED_DIR, tokenizer)
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
                lora=vars(lora) if lora is not None else None,
                start_model=cfg.model.model_args.get("pretrained_model_name_or_path")
                or f"built-in {cfg.model.name}",
                world_size=targs.world_size,
                global_steps=trainer.state.global_step,
            ),
        )
    return out


def _parallelism(trainer: Any) -> str:
    """How the processes share the work, for the run log: DDP, FSDP or DeepSpeed ZeRO-N."""
    if getattr(trainer, "is_deepspeed_enabled", False):
        plugin = trainer.accelerator.state.deepspeed_plugin
        return f"DeepSpeed ZeRO-{plugin.zero_stage}"
    if getattr(trainer, "is_fsdp_enabled", False):
        return "FSDP"
    kind = str(trainer.accelerator.state.distributed_type).rsplit(".", 1)[-1]
    return {"NO": "one process", "MULTI_CPU": "DDP, CPU", "MULTI_GPU": "DDP"}.get(kind, kind)


def prepare_output_dir(out: Path, overwrite: bool, resume: Any) -> Path:
    """Refuse to mix a new run into an old one; ``overwrite=true`` clears the folder first."""
    # Under a launcher only rank 0 decides and clears: another rank looking while rank 0 deletes
    # and recreates the folder could see a half-cleared one and stop alone, hanging the others.
    # Every rank sees the same folder before anyone clears it, so a refusal happens on all ranks.
    main = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0
    holds = out.exists() and any(p.name != WRITE_PROBE for p in out.iterdir())
    if (main or not overwrite) and holds and not resume:
        if not overwrite:
            raise ConfigError(
                f"run folder '{out}' already exists and is not empty; pass overwrite=true to replace it, "
                "or choose another task_name"
            )
        shutil.rmtree(out)
    if main:
        check_writable(out)
    return out


def resolve_resume(resume: Any, out: Path) -> str | bool | None:
    """``true`` = the newest checkpoint in the run folder; a path = that checkpoint."""
    if resume in (None, False, "false", ""):
        return None
    if resume is True or str(resume).lower() == "true":
        if not any(out.glob("checkpoint-*")):
            raise ConfigError(
                f"trainer.args.resume_from_checkpoint=true but '{out}' has no checkpoint-* folder; "
                "save checkpoints with trainer.args.save_strategy=steps +trainer.args.save_steps=N"
            )
        return True
    if not Path(str(resume)).is_dir():
        raise ConfigError(
            f"trainer.args.resume_from_checkpoint={resume!r} is not a checkpoint folder"
        )
    return str(resume)


def warn_if_multi_gpu_without_launcher() -> None:
    """A plain ``python`` run on a multi-GPU box would silently become DataParallel in HF."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n > 1 and "WORLD_SIZE" not in os.environ:
        log.warning(
            "warning: %d GPUs are visible but no distributed launcher was used; run "
            "`accelerate launch --config_file configs/accelerate/default_config.yaml --num_processes %d src/train.py ...` "
            "to use them, or set CUDA_VISIBLE_DEVICES=0. Training on one GPU.",
            n,
            n,
        )
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")


class TrainingDiverged(ConfigError):
    """The loss became NaN or infinite; training stopped before saving anything from that step."""


class FiniteLossGuard(TrainerCallback):
    """Stops training at the first optimizer step whose logged or computed loss is not finite,
    before that step can be saved as a checkpoint or as the final model."""

    def __init__(self) -> None:
        self.bad_step: int | None = None
        self.last_checkpoint: int | None = None

    trainer: Any = None  # set after the trainer is built

    def on_step_end(self, args, state, control, **kwargs):
        # One host sync per optimizer step (not per micro-batch): were all its losses finite?
        finite = getattr(self.trainer, "all_finite", None)
        if finite is not None:
            self.trainer.all_finite = None
            if not bool(finite):
                self._stop(state, control)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and any(
            isinstance(v, float) and not math.isfinite(v) for k, v in logs.items() if "loss" in k
        ):
            self._stop(state, control)

    def on_save(self, args, state, control, **kwargs):
        if self.bad_step is None:
            self.last_checkpoint = state.global_step

    def _stop(self, state, control) -> None:
        if self.bad_step is None:
            self.bad_step = state.global_step
        control.should_training_stop = True
        control.should_save = False

    def describe(self, out: Path) -> str:
        last = (
            f"{out}/checkpoint-{self.last_checkpoint}"
            if self.last_checkpoint
            else "none (no checkpoint was saved)"
        )
        return (
            f"the loss became NaN/inf at step {self.bad_step}; training stopped and no model was saved from that step. "
            f"Last good checkpoint: {last}. Lower trainer.args.learning_rate or check the method arguments"
        )


class EpochCallback(TrainerCallback):
    """Tells the forget/retain dataset which epoch starts, so the retain pairing is redrawn.

    The epoch is derived from the optimizer step (not the float ``state.epoch``), so a run
    resumed mid-epoch draws the same pairing as the uninterrupted one.
    """

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            batches = math.ceil(
                len(self.dataset) / (args.per_device_train_batch_size * args.world_size)
            )
            steps_per_epoch = max(1, math.ceil(batches / args.gradient_accumulation_steps))
            self.dataset.set_epoch(state.global_step // steps_per_epoch)


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
