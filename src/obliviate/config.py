"""Validation of a composed config, done before any data or model is loaded."""

from __future__ import annotations

import dataclasses
import difflib
import math
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from obliviate.errors import ConfigError
from obliviate.utils.dist import launched

#: The Hydra configs ship inside the package (``configs`` at the repository root links here), so an
#: installed obliviate composes the same configs from any folder.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# Keys of trainer.args that are ours, not TrainingArguments'.
EXTRA_TRAINER_ARGS = ("warmup_epochs",)
DEFAULT_LOGGING_STEPS = 10


def require_task_name(cfg: DictConfig) -> str:
    try:
        name = cfg.task_name
    except MissingMandatoryValue:
        name = None
    if not name or str(name).strip() in ("", "???"):
        raise ConfigError(
            "task_name is missing; pass task_name=<run name> (the run is written to saves/<mode>/<task_name>)"
        )
    if "/" in str(name) or str(name) in (".", ".."):
        raise ConfigError(
            f"task_name={name!r} must be a plain name, not a path; use paths.output_dir to choose a folder"
        )
    return str(name)


def method_class(cfg: DictConfig) -> type:
    target = cfg.trainer.get("_target_")
    if not target:
        raise ConfigError(
            "trainer has no _target_; pick one with trainer=SimNPO|NPO|GradDiff|GradAscent|finetune"
        )
    return target_class("trainer._target_", target)


def target_class(key: str, target: Any) -> type:
    """The class a ``_target_`` names (methods, training sources, evaluation suites, attacks);
    one ``ConfigError`` line naming ``key`` when it cannot be imported."""
    try:
        return get_class(str(target))
    except Exception as e:  # ImportError, AttributeError, or not a class
        raise ConfigError(f"{key}={target!r} cannot be imported ({e})") from None


def method_args(cfg: DictConfig, cls: type) -> Any:
    # An empty section (`method_args: {}`) is a falsy DictConfig: test for None, not truthiness.
    section = cfg.trainer.get("method_args")
    raw = OmegaConf.to_container(section, resolve=True) if section is not None else {}
    return cls.Args.from_dict(raw, cls.__name__)


def _raw_trainer_args(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg.trainer.args, resolve=True)  # type: ignore[return-value]


def check_trainer_args(cfg: DictConfig) -> None:
    """The cheap checks of ``trainer.args`` / ``trainer.effective_batch_size``, run before any
    data or model is loaded."""
    from transformers import TrainingArguments

    raw = _raw_trainer_args(cfg)
    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    for key in raw:
        if key not in known and key not in EXTRA_TRAINER_ARGS:
            hint = difflib.get_close_matches(key, sorted(known), n=1)
            raise ConfigError(
                f"trainer.args.{key} is not a TrainingArguments field"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
    if raw.get("max_steps") == 0:
        raise ConfigError(
            "trainer.args.max_steps=0 trains nothing; use -1 (train num_train_epochs) or a positive number"
        )
    if raw.get("max_steps", -1) != -1:
        _whole("trainer.args.max_steps", raw["max_steps"], 1, "(or -1: train num_train_epochs)")
    for key in TRAINER_COUNTS:
        value = raw.get(key)
        if key in STEP_INTERVALS and isinstance(value, float) and 0 < value < 1:
            continue  # transformers' ratio form: a fraction of the total training steps
        if value is not None or key in TRAINER_COUNTS_REQUIRED:
            _whole(
                f"trainer.args.{key}",
                raw.get(key, 1),
                1,
                _INTERVAL_HINT if key in STEP_INTERVALS else "",
            )
    for key, (low, strict) in TRAINER_REALS.items():
        if raw.get(key) is not None:
            _real(f"trainer.args.{key}", raw[key], low, strict)
    if raw.get("warmup_steps") is not None:
        _whole("trainer.args.warmup_steps", raw["warmup_steps"], 0)
    accumulation_for(cfg)


# Whole-number trainer.args that count something (>= 1); the first two always have a value.
TRAINER_COUNTS = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "per_device_eval_batch_size",
    "logging_steps",
    "eval_steps",
    "save_steps",
)
# Step intervals may also be a fraction in (0, 1) of the total steps, as transformers reads them.
STEP_INTERVALS = ("logging_steps", "eval_steps", "save_steps")
_INTERVAL_HINT = "(or a fraction in (0, 1) of the total steps)"
TRAINER_COUNTS_REQUIRED = ("per_device_train_batch_size", "gradient_accumulation_steps")
# Real-valued trainer.args: (lowest value, whether the lowest itself is refused).
TRAINER_REALS = {
    "learning_rate": (0.0, True),
    "num_train_epochs": (0.0, True),
    "warmup_epochs": (0.0, False),
    "weight_decay": (0.0, False),
    "max_grad_norm": (0.0, False),
}
# eval.* settings that may be null (= a default) or a whole number >= 1.
EVAL_COUNTS = ("max_items", "utility_items", "batch_size", "generation_batch_size")


def check_numeric_settings(cfg: DictConfig) -> None:
    """The lengths and counts outside ``trainer.args`` (``data.*``, ``eval.*``), shared by
    training (evaluation during training) and evaluation: one ``error:`` line before any work."""
    data = cfg.get("data") or {}
    if "max_length" in data:
        _whole("data.max_length", data.get("max_length"), 1)
    ev = cfg.get("eval") or {}
    if "max_new_tokens" in ev:
        _whole("eval.max_new_tokens", ev.get("max_new_tokens"), 1)
    for key in EVAL_COUNTS:
        if ev.get(key) is not None:
            _whole(f"eval.{key}", ev.get(key), 1, "(or null for the default)")


def _whole(key: str, value: Any, low: int, alternative: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(
            f"{key}={value} must be a whole number >= {low}"
            + (f" {alternative}" if alternative else "")
        )


def _real(key: str, value: Any, low: float, strict: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (strict and value == low):
        raise ConfigError(f"{key}={value} must be a number {'>' if strict else '>='} {low:g}")


def accumulation_for(cfg: DictConfig, world: int | None = None) -> int:
    """Gradient accumulation steps: as given, or derived from ``trainer.effective_batch_size``
    and the world size so that the effective batch does not depend on the number of GPUs."""
    raw = _raw_trainer_args(cfg)
    ga = int(raw.get("gradient_accumulation_steps", 1))
    eff = cfg.trainer.get("effective_batch_size")
    if eff is None:
        return ga
    world = world or launched()[1]
    per_step = int(raw.get("per_device_train_batch_size", 1)) * world
    if int(eff) < 1 or int(eff) % per_step:
        raise ConfigError(
            f"trainer.effective_batch_size={eff} is not a multiple of per_device_train_batch_size x processes "
            f"= {per_step}; choose a multiple (e.g. {per_step * max(1, round(int(eff) / per_step))})"
        )
    return int(eff) // per_step


def training_arguments(
    cfg: DictConfig, n_train: int, world_size: int | None = None, bf16_default: bool = False
) -> Any:
    """Build HF ``TrainingArguments`` from ``trainer.args`` (checked by ``check_trainer_args``);
    ``warmup_epochs`` becomes ``warmup_steps`` using the data size and the world size."""
    from transformers import TrainingArguments

    check_trainer_args(cfg)
    raw = _raw_trainer_args(cfg)
    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    raw["gradient_accumulation_steps"] = accumulation_for(cfg, world_size)
    if raw.get("logging_steps") is None:
        raw["logging_steps"] = DEFAULT_LOGGING_STEPS
    if raw.get("bf16") is None:
        raw["bf16"] = bf16_default
    raw.pop("resume_from_checkpoint", None)  # handled by the run (true = newest checkpoint)
    for key in ("eval_steps", "save_steps"):
        if raw.get(key) is None:
            raw.pop(key, None)

    warmup_epochs = raw.pop("warmup_epochs", None)
    if warmup_epochs is not None:
        if raw.get("warmup_steps"):
            raise ConfigError(
                "set either trainer.args.warmup_epochs or trainer.args.warmup_steps, not both"
            )
        world = world_size or launched()[1]
        per_step = (
            int(raw.get("per_device_train_batch_size", 8))
            * int(raw.get("gradient_accumulation_steps", 1))
            * world
        )
        raw["warmup_steps"] = warmup_steps(cfg, float(warmup_epochs), n_train, per_step)
    # The guide's `gradient_checkpointing` became `activation_checkpointing` in transformers 5.x;
    # pass the new name where it exists so newer releases do not warn on every run.
    if "activation_checkpointing" in known and "gradient_checkpointing" in raw:
        gc = raw.pop("gradient_checkpointing")
        if raw.get("activation_checkpointing") is None:
            raw["activation_checkpointing"] = gc
    raw.setdefault("remove_unused_columns", False)
    try:
        return TrainingArguments(**raw)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"invalid trainer.args: {e}") from e


def warmup_steps(cfg: DictConfig, warmup_epochs: float, n_train: int, per_step: int) -> int:
    """``warmup_epochs`` as optimizer steps: that many epochs of whole steps (a last, partial
    step counts), or under ``trainer.protocol=open-unlearning`` its rows-based floor."""
    from obliviate.protocol import protocol_from

    if protocol_from(cfg.trainer.get("protocol"), "trainer.protocol").warmup_floor:
        return int(warmup_epochs * n_train // per_step)
    return int(round(warmup_epochs * max(1, math.ceil(n_train / per_step))))


def fuse_accumulation(cfg: DictConfig, targs: Any) -> int | None:
    """If accumulation is fused, rewrite ``targs`` to passes of several micro-batches and return
    the user's micro-batch size (the loss is averaged over groups of that many rows).

    ``trainer.fuse_accumulation``: ``true`` = all micro-batches of an optimizer step in one pass;
    an integer k = k micro-batches per pass (k divides the accumulation steps): less memory than
    ``true``, fewer passes than ``false``; ``auto`` = ``true`` on a GPU without gradient
    checkpointing. The maths is the same in every case.
    """
    import torch

    mode = str(cfg.trainer.get("fuse_accumulation", "auto")).lower()
    ga = targs.gradient_accumulation_steps
    if mode.isdigit():
        k = int(mode)
        if k < 1 or ga % k:
            raise ConfigError(
                f"trainer.fuse_accumulation={mode}: the micro-batches per pass must divide "
                f"gradient_accumulation_steps={ga}; use one of "
                f"{', '.join(str(d) for d in range(1, ga + 1) if ga % d == 0)}, true or false"
            )
    elif mode not in ("auto", "true", "false"):
        raise ConfigError(
            f"trainer.fuse_accumulation={mode!r}; use auto, true, false or a number of "
            "micro-batches per pass"
        )
    else:
        on = mode == "true" or (
            mode == "auto" and torch.cuda.is_available() and not targs.gradient_checkpointing
        )
        k = ga if on else 1
    if k == 1 or ga == 1 or cfg.mode != "unlearn":
        return None
    group = targs.per_device_train_batch_size
    targs.per_device_train_batch_size = group * k
    targs.gradient_accumulation_steps = ga // k
    return group
