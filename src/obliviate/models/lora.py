"""LoRA adapters through PEFT (optional: ``pip install 'obliviate[lora]'``).

The model config's ``lora`` block turns them on: ``model.lora.r=8`` trains rank-8 adapters on
``model.lora.target_modules`` instead of all weights (``r: null``, the default, trains all
weights). A run folder then holds the adapter (``adapter_config.json``,
``adapter_model.safetensors``); with ``model.lora.merge=true`` also ``merged/``, the full model
with the adapters folded in. ``load_model`` reads either.

Two traps this module closes: with gradient checkpointing the frozen embeddings' output does not
require grad, so re-entrant checkpointing would give the adapters no gradient at all (they would
silently not train) -- ``enable_input_require_grads`` fixes that for any checkpointing mode; and
a target module name that matches nothing is an error here, not an adapter-free run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from obliviate.errors import ConfigError

ADAPTER_CONFIG = "adapter_config.json"
MERGED_DIR = "merged"


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...]
    merge: bool


def lora_settings(model_cfg: Any) -> LoraSettings | None:
    """The validated ``model.lora`` block, or None when LoRA is off (no block, or ``r: null``)."""
    block = model_cfg.get("lora") if model_cfg is not None else None
    if block is None:
        return None
    raw = OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block) else block
    if not isinstance(raw, dict):
        raise ConfigError(f"model.lora={raw!r} must be a mapping (r, alpha, dropout, ...)")
    known = {"r", "alpha", "dropout", "target_modules", "merge"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown key model.lora.{unknown[0]}; model.lora takes {', '.join(sorted(known))}"
        )
    r = raw.get("r")
    if r is None:
        return None
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ConfigError(f"model.lora.r={r!r} must be a positive integer (or null: no LoRA)")
    alpha = raw.get("alpha", 16)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ConfigError(f"model.lora.alpha={alpha!r} must be a number > 0")
    dropout = raw.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"model.lora.dropout={dropout!r} must be in [0, 1)")
    targets = raw.get("target_modules")
    if isinstance(targets, str):
        targets = [targets]
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ConfigError(
            f"model.lora.target_modules={targets!r} must be a non-empty list of module names, "
            "e.g. [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]"
        )
    merge = raw.get("merge", False)
    if not isinstance(merge, bool):
        raise ConfigError(f"model.lora.merge={merge!r} must be true or false")
    require_peft()
    return LoraSettings(int(r), float(alpha), float(dropout), tuple(targets), merge)


def require_peft() -> Any:
    try:
        import peft
    except ImportError as e:
        raise ConfigError(
            "LoRA needs the 'peft' package: pip install 'obliviate[lora]' (or pip install 'peft>=0.12')"
        ) from e
    return peft


def is_peft_model(model: Any) -> bool:
    """True for a PEFT-wrapped model (``peft.PeftModel``), also inside a DDP wrapper."""
    model = getattr(model, "module", model)
    return hasattr(model, "get_base_model") and hasattr(model, "disable_adapter")


def apply_lora(model: Any, settings: LoraSettings) -> Any:
    """Wrap ``model`` with trainable LoRA adapters; every other weight is frozen."""
    peft = require_peft()
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in settings.target_modules if t not in names]
    if missing:
        linear = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, m in model.named_modules()
                if type(m).__name__ == "Linear" and name
            }
        )
        raise ConfigError(
            f"model.lora.target_modules: {missing} match no module of {type(model).__name__}; "
            f"its linear layers are {linear}"
        )
    config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = peft.get_peft_model(model, config)
    # Make the (frozen) embedding output require grad, so checkpointed layers always pass a
    # gradient back to the adapters inside them, whichever checkpointing mode is used.
    model.enable_input_require_grads()
    return model


def save_merged(model: Any, folder: Path, tokenizer: Any | None = None) -> Path:
    """Fold the adapters into the weights and save the full model (and tokenizer) to ``folder``.
    The model is changed in place: call this last."""
    merged = model.merge_and_unload()
    merged.save_pretrained(str(folder))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    return folder


def is_adapter_folder(path: str | Path | None) -> bool:
    return path is not None and (Path(path).expanduser() / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> str | None:
    """The base model an adapter folder was trained on (None: a model built in code)."""
    config = json.loads((Path(path).expanduser() / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    return config.get("base_model_name_or_path") or None


def load_adapter(base_model: Any, path: str | Path) -> Any:
    """``base_model`` with the adapter at ``path`` applied and merged in (a plain model)."""
    peft = require_peft()
    model = peft.PeftModel.from_pretrained(base_model, str(Path(path).expanduser()))
    return model.merge_and_unload()
