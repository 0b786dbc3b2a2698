"""The training story shared by finetuning and unlearning:
preflight -> data -> model -> trainer -> train -> save (model, tokenizer, config, receipt)."""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback, set_seed

from obliviate import config as C
from obliviate.data.collate import PairCollator
from obliviate.data.formatting import loaded_pad_id
from obliviate.data.sources import training_source
from obliviate.data.stream import EpochStream, open_unlearning_steps
from obliviate.errors import ConfigError
from obliviate.methods.base import TrainData, reference_logps
from obliviate.models.loading import check_model_path, load_model, load_tokenizer
from obliviate.models.lora import MERGED_DIR, LoraSettings, apply_lora, lora_settings, save_merged
from obliviate.protocol import epoch_end_mismatch, protocol_from
from obliviate.utils.dist import launched
from obliviate.utils.efficiency import EfficiencyMeter
from obliviate.utils.io import WRITE_PROBE, atomic_write_json, atomic_write_text, check_writable
from obliviate.utils.receipt import make_receipt, rows_sha256

log = logging.getLogger("obliviate")

#: training rows assumed by ``preflight`` when the data size is only known once loaded (a local
#: folder): it only affects ``warmup_epochs`` -> ``warmup_steps``, recomputed by ``run_training``
PLACEHOLDER_ROWS = 1


@dataclass(frozen=True)
class RunPlan:
    """What ``preflight`` checked, handed to the steps of ``run_training`` that follow."""

    mode: str  # "unlearn" or "finetune"
    method_cls: type
    method_args: Any
    lora: LoraSettings | None  # None = train all weights
    splits: list[str]  # to load: [forget, retain, "full"] or [train split]
    out: Path
    resume: str | bool | None  # for trainer.train(resume_from_checkpoint=...)
    training_args: Any  # TrainingArguments for ``n_train`` rows (or the placeholder)
    loss_group_size: int | None  # rows per user micro-batch when accumulation is fused
    n_train: int | None  # training rows as the split names tell them; None = known once loaded
    source: Any = None  # where the rows come from (train_source; TOFU by default)


def preflight(cfg: DictConfig, n_train: int | None = None) -> RunPlan:
    """Every check of a training run that needs neither data nor weights: task name, method
    class and arguments, trainer arguments, split pair, the data folder (local data) or built-in
    set, the model path, LoRA settings, the run folder, and the TrainingArguments themselves.

    Touches no network, loads no data or model, creates and deletes no file; a mistake raises
    ConfigError with one line. ``n_train`` overrides the training-set size the split names give
    (TOFU on the Hub, the built-in set); for a local folder it is a placeholder until loaded.
    """
    C.require_task_name(cfg)
    mode = str(cfg.mode)
    method_cls = check_mode(C.method_class(cfg), mode)
    margs = C.method_args(cfg, method_cls)
    lora = lora_settings(cfg.model)
    C.check_trainer_args(cfg)
    C.check_numeric_settings(cfg)
    trainer_protocol(cfg)
    protocol_from((cfg.get("eval") or {}).get("protocol"), "eval.protocol")  # in-training eval
    source = training_source(cfg)
    splits = source.splits(mode)
    known = source.check(splits, method_cls)
    check_model_path(cfg.model.model_args.get("pretrained_model_name_or_path"))
    out = Path(cfg.paths.output_dir)
    raw_resume = cfg.trainer.args.get("resume_from_checkpoint")
    check_output_dir(out, bool(cfg.overwrite), raw_resume)
    resume = resolve_resume(raw_resume, out)
    n_train = n_train or known
    targs, group = training_arguments(cfg, n_train or PLACEHOLDER_ROWS)
    return RunPlan(
        mode, method_cls, margs, lora, splits, out, resume, targs, group, n_train, source
    )


def run_training(cfg: DictConfig, callbacks: list[TrainerCallback] | None = None) -> Path:
    # 1. Everything a user can get wrong is checked before data or weights are touched.
    plan = preflight(cfg)

    # 2. Data (validated; forget/retain author-disjoint and complementary), then the run folder.
    rows = load_rows(cfg, plan)
    n_train = len(rows[plan.splits[0]])
    targs, group = plan.training_args, plan.loss_group_size
    if n_train != plan.n_train:  # the warm-up in epochs needs the real size
        targs, group = training_arguments(cfg, n_train)
    out = prepare_output_dir(plan.out, bool(cfg.overwrite), plan.resume)

    # 3. Model and tokenizer.
    set_seed(int(cfg.seed))
    model, tokenizer, mask_id = load_model_and_tokenizer(cfg, plan)
    meter = EfficiencyMeter().attach(model)  # before the reference pass, so it is counted

    # 4. The method builds its training set (e.g. reference log-probs, refusal answers).
    train_ds = plan.method_cls.build_train_dataset(
        TrainData(
            train_rows=rows[plan.splits[0]],
            retain_rows=rows[plan.splits[1]] if plan.mode == "unlearn" else None,
            encode=plan.source.encoder(tokenizer),
            reference_logps=reference_scorer(model, targs, tokenizer.pad_token_id, mask_id),
            seed=int(cfg.seed),
            global_rng_pairing=trainer_protocol(cfg).retain_pairs_global_rng,
        ),
        plan.method_args,
    )
    if len(train_ds) != n_train:  # a text corpus trains on chunks, not on its documents
        n_train = len(train_ds)
        targs, group = training_arguments(cfg, n_train)

    stream = epoch_stream(cfg, targs, group, n_train)

    # 5. Trainer.
    guard = FiniteLossGuard()
    eval_hook = None
    if targs.eval_strategy != "no":
        from obliviate.eval.hook import make_training_eval_hook

        # as loaded, not as prepared for training: each suite prepares its own, and
        # eval.protocol=open-unlearning reads the pad the tokenizer came with
        eval_hook = make_training_eval_hook(cfg, load_tokenizer(cfg.model))
    trainer = plan.method_cls(
        model=model,
        args=targs,
        train_dataset=train_ds,
        eval_dataset=train_ds if eval_hook else None,  # never read: evaluate() runs the TOFU hook
        data_collator=PairCollator(tokenizer.pad_token_id, mask_id),
        processing_class=tokenizer,
        method_args=plan.method_args,
        eval_hook=eval_hook,
        ref_model_factory=lambda: load_model(cfg.model),  # only ZeRO-3 needs a second load
        loss_group_size=group,
        batch_stream=stream,
        data_order_file=(
            out / f"data_order.rank{targs.process_index}.jsonl"
            if cfg.trainer.get("record_data_order")
            else None
        ),
        callbacks=[
            EpochCallback(train_ds),
            TrainerLogFile(out / "trainer_log.txt"),
            guard,
            meter,
            *(callbacks or []),
        ],
    )
    guard.trainer = trainer
    log_batch_shape(trainer, group, n_train)

    # 6. Train and save.
    trainer.train(resume_from_checkpoint=plan.resume)
    if guard.bad_step is not None:
        raise TrainingDiverged(guard.describe(out))
    # Every rank calls save_model: under DeepSpeed ZeRO-3 / FSDP it gathers the sharded weights
    # collectively (rank 0 alone would wait forever); Trainer writes on the main process only.
    trainer.save_model(str(out))  # with LoRA: the adapter
    if trainer.is_world_process_zero():
        save_run_files(cfg, plan, trainer, tokenizer, rows, meter.summary())
    return out


def load_model_and_tokenizer(cfg: DictConfig, plan: RunPlan) -> tuple[Any, Any, int | None]:
    """The model (with its LoRA adapter, if asked), the tokenizer as the training source
    prepares it, and the id open-unlearning's collator masks (None unless
    ``trainer.protocol=open-unlearning``): its pad as the tokenizer came, before ours is set."""
    tokenizer = load_tokenizer(cfg.model)
    mask_id = trainer_protocol(cfg).mask_id(loaded_pad_id(tokenizer))
    tokenizer = plan.source.prepare_tokenizer(tokenizer)
    model = load_model(cfg.model)
    if plan.lora is not None:
        model = apply_lora(model, plan.lora)
    return model, tokenizer, mask_id


def check_mode(method_cls: type, mode: str) -> type:
    """A method meets the data its config mode makes: forget/retain pairs, or plain QA."""
    if getattr(method_cls, "mode", mode) != mode:
        fix = "train.yaml" if method_cls.mode == "finetune" else "unlearn.yaml"
        raise ConfigError(
            f"trainer={method_cls.__name__} is a {method_cls.mode} method but this is a {mode} "
            f"config; use --config-name={fix}"
        )
    return method_cls


def training_arguments(cfg: DictConfig, n_train: int) -> tuple[Any, int | None]:
    """TrainingArguments for ``n_train`` rows, fused where asked, on one GPU unless launched
    as several processes, and the rows per user micro-batch when fused (else None)."""
    bf16 = str(cfg.model.model_args.get("dtype")) == "bfloat16" and torch.cuda.is_available()
    targs = C.training_arguments(cfg, n_train, bf16_default=bf16)
    group = C.fuse_accumulation(cfg, targs)
    processes = launched()[1]
    if processes > 1 and targs.world_size == 1:
        raise ConfigError(
            f"launched as {processes} processes but no process group formed, so each would train "
            "alone into the same folder; on CPU use ACCELERATE_USE_CPU=true accelerate launch --config_file "
            f"{C.CONFIG_DIR / 'accelerate/default_config.yaml'} --num_processes N src/train.py ..."
        )
    one_gpu_unless_launched(targs)
    return targs, group


def load_rows(cfg: DictConfig, plan: RunPlan) -> dict[str, list[dict[str, Any]]]:
    """The splits the run trains on, validated by the run's training source."""
    return plan.source.load(plan.splits, plan.mode)


def trainer_protocol(cfg: DictConfig) -> Any:
    """``trainer.protocol``: obliviate's batches or open-unlearning's (obliviate.protocol)."""
    return protocol_from(cfg.trainer.get("protocol"), "trainer.protocol")


def reference_scorer(
    model: torch.nn.Module, targs: Any, pad_id: int, mask_id: int | None = None
) -> Any:
    """``items -> log pi_ref(y|x)`` of the model as loaded (before any training step), in
    batches masked as the training batches are."""

    def score(items: list[dict[str, Any]]) -> list[float]:
        model.to(targs.device)  # this rank's device (the launcher has set it)
        # No more rows per pass than a training pass has forget rows: without gradients this
        # pass then stays below training's peak memory (NPO costs what SimNPO costs).
        return reference_logps(model, items, pad_id, targs.per_device_train_batch_size, mask_id)

    return score


def epoch_stream(
    cfg: DictConfig, targs: Any, group: int | None, n_train: int
) -> EpochStream | None:
    """Under open-unlearning's protocol, when an epoch's micro-batches are not a multiple of the
    accumulation: the epochs as one stream of micro-batches and open-unlearning's step count in
    ``targs.max_steps`` (data/stream.py), so the leftovers join the next epoch's first step as
    there. Where that cannot be done (several processes, fused accumulation, fewer micro-batches
    than the accumulation) the run log says how the run will differ."""
    protocol = trainer_protocol(cfg)
    fused = targs.per_device_train_batch_size // group if group else 1  # the user's batches
    batch, accumulation = (
        targs.per_device_train_batch_size // fused,
        targs.gradient_accumulation_steps * fused,
    )
    mismatch = epoch_end_mismatch(protocol, n_train, batch * targs.world_size, accumulation)
    if mismatch is None:
        return None
    micro = math.ceil(n_train / batch)
    if (
        not protocol.epochs_as_one_stream
        or fused > 1
        or targs.world_size > 1
        or micro < accumulation
    ):
        log.warning(mismatch)
        return None
    steps = (
        targs.max_steps
        if targs.max_steps > 0
        else open_unlearning_steps(micro, accumulation, targs.num_train_epochs)
    )
    targs.max_steps = steps
    epochs = math.ceil(steps / (micro // accumulation))
    log.info(
        "trainer.protocol=open-unlearning: %d micro-batches per epoch at accumulation %d; %d "
        "optimizer steps over %d epochs run as one stream, as open-unlearning's transformers 4.45 "
        "counts them",
        micro,
        accumulation,
        steps,
        epochs,
    )
    return EpochStream(
        n_train, batch, epochs, targs.data_seed if targs.data_seed is not None else targs.seed
    )


def log_batch_shape(trainer: Any, group: int | None, n_train: int) -> None:
    """The run log states the user's micro-batch and accumulation (fusion only regroups them)."""
    targs = trainer.args
    fused = targs.per_device_train_batch_size // group if group else 1
    micro = targs.per_device_train_batch_size // fused
    accum = targs.gradient_accumulation_steps * fused
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


def save_run_files(
    cfg: DictConfig,
    plan: RunPlan,
    trainer: Any,
    tokenizer: Any,
    rows: dict[str, list],
    efficiency: dict[str, Any] | None = None,
) -> None:
    """Main process: the merged LoRA model (if asked), the resolved config and the receipt."""
    out = plan.out
    if plan.lora is not None and plan.lora.merge:
        save_merged(trainer.model, out / MERGED_DIR, tokenizer)
    atomic_write_text(out / "obliviate_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_json(
        out / "receipt.json",
        make_receipt(
            int(cfg.seed),
            {s: rows_sha256(r) for s, r in rows.items()},
            mode=plan.mode,
            method=plan.method_cls.__name__,
            method_args=vars(plan.method_args),
            lora=vars(plan.lora) if plan.lora is not None else None,
            start_model=cfg.model.model_args.get("pretrained_model_name_or_path")
            or f"built-in {cfg.model.name}",
            world_size=trainer.args.world_size,
            global_steps=trainer.state.global_step,
            efficiency=efficiency,  # wall time, s/step, tokens/s, peak memory, FLOPs estimate
            trainer_protocol=trainer_protocol(cfg).name,
        ),
    )


def _parallelism(trainer: Any) -> str:
    """How the processes share the work, for the run log: DDP, FSDP or DeepSpeed ZeRO-N."""
    if getattr(trainer, "is_deepspeed_enabled", False):
        plugin = trainer.accelerator.state.deepspeed_plugin
        return f"DeepSpeed ZeRO-{plugin.zero_stage}"
    if getattr(trainer, "is_fsdp_enabled", False):
        return "FSDP"
    kind = str(trainer.accelerator.state.distributed_type).rsplit(".", 1)[-1]
    return {"NO": "one process", "MULTI_CPU": "DDP, CPU", "MULTI_GPU": "DDP"}.get(kind, kind)


def check_output_dir(out: Path, overwrite: bool, resume: Any) -> None:
    """Read-only: the run folder may be (re)used and written. Nothing is created or deleted."""
    if not overwrite and not resume and _holds_files(out):
        raise ConfigError(
            f"run folder '{out}' already exists and is not empty; pass overwrite=true to replace it, "
            "or choose another task_name"
        )
    # The nearest folder that exists must be writable (the run folder is made inside it).
    parent = out
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        problem = f"'{parent}' is a file"
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = f"'{parent}' is read-only"
    else:
        return
    raise ConfigError(
        f"output directory '{out}' is not writable ({problem}); choose another paths.output_dir"
    )


def _holds_files(out: Path) -> bool:
    return out.is_dir() and any(p.name != WRITE_PROBE for p in out.iterdir())


def prepare_output_dir(out: Path, overwrite: bool, resume: Any) -> Path:
    """Refuse to mix a new run into an old one; ``overwrite=true`` clears the folder first."""
    # Under a launcher only rank 0 decides and clears: another rank looking while rank 0 deletes
    # and recreates the folder could see a half-cleared one and stop alone, hanging the others.
    # Every rank sees the same folder before anyone clears it, so a refusal happens on all ranks.
    main = launched()[0] == 0
    holds = _holds_files(out)
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


def one_gpu_unless_launched(targs: Any) -> None:
    """A plain ``python`` run on a multi-GPU box would silently become ``DataParallel`` in
    Trainer (it wraps the model when ``n_gpu > 1``). Train on the first GPU instead and say so.

    No environment variable is set: ``CUDA_VISIBLE_DEVICES`` is read once, when CUDA starts, and
    CUDA has started by now (TrainingArguments counted the GPUs), so setting it here would change
    nothing. Trainer itself pins ``n_gpu`` this way for model parallelism.
    """
    if launched()[1] > 1 or targs.n_gpu <= 1:
        return
    log.warning(
        "warning: %d GPUs are visible but no distributed launcher was used; run "
        "`accelerate launch --config_file %s --num_processes %d "
        "src/train.py ...` to use them all. Training on one GPU (%s).",
        targs.n_gpu,
        C.CONFIG_DIR / "accelerate/default_config.yaml",
        targs.n_gpu,
        targs.device,
    )
    targs._n_gpu = 1


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
