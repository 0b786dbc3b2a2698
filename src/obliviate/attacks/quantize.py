"""Quantization attack: evaluate the model with its weights rounded to 4 or 8 bits.

Zhang et al. 2024 ("Catastrophic failure of LLM unlearning via quantization", arXiv
2410.16454) found that unlearning often moves the weights by less than a quantization step, so
rounding them back to a 4-bit grid restores much of the forgotten knowledge.

``attack=quantize`` quantizes a copy of the model with torchao's weight-only integer
quantization, which runs on a CPU (``IntxWeightOnlyConfig``: round-to-nearest, one scale (and
zero point if asymmetric) per group of ``attack.group_size`` consecutive input weights of a row;
matrix products use the dequantized weights). Every ``nn.Linear`` except the LM head is
quantized (the head and the embeddings stay in full precision, as in bitsandbytes' and the
paper's setups). Each weight moves by at most half a step of its group's grid.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import torch
from omegaconf import DictConfig

from obliviate.attacks.base import ModelAttack
from obliviate.errors import ConfigError

SCHEMES = ("symmetric", "asymmetric")
SKIPPED = ("lm_head",)  # module names kept in full precision


def quantized_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The modules the attack quantizes: every Linear but the LM head."""
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in SKIPPED
    }


def torchao_config(bits: int, group_size: int, scheme: str) -> Any:
    from torchao.quantization import IntxWeightOnlyConfig, MappingType
    from torchao.quantization.granularity import PerGroup

    mapping = MappingType.SYMMETRIC if scheme == "symmetric" else MappingType.ASYMMETRIC
    dtype = {4: torch.int4, 8: torch.int8}[bits]
    return IntxWeightOnlyConfig(
        weight_dtype=dtype, granularity=PerGroup(group_size), mapping_type=mapping
    )


def quantize_model(model: torch.nn.Module, bits: int, group_size: int, scheme: str) -> list[str]:
    """Quantize ``model`` in place (its Linears but the head); the quantized module names."""
    from torchao.quantization import quantize_

    targets = quantized_linears(model)
    bad = {n: m.in_features for n, m in targets.items() if m.in_features % group_size}
    if bad:
        name, width = next(iter(bad.items()))
        raise ConfigError(
            f"attack.group_size={group_size} does not divide {name}'s {width} input features; "
            "choose a divisor (e.g. 32)"
        )
    chosen = set(targets.values())
    quantize_(model, torchao_config(bits, group_size, scheme), filter_fn=lambda m, _: m in chosen)
    return sorted(targets)


def dequantized(weight: torch.Tensor) -> torch.Tensor:
    """The float weights a quantized module computes with."""
    return weight.dequantize() if hasattr(weight, "dequantize") else weight


def group_scales(weight: torch.Tensor) -> torch.Tensor:
    """(out, in / group) quantization step of each group of a torchao-quantized weight."""
    return weight.scale.float()


class QuantizeAttack(ModelAttack):
    name = "quantize"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        a = cfg.attack
        self.bits = a.get("bits")
        if self.bits not in (4, 8):
            raise ConfigError(f"attack.bits={self.bits}; use 4 or 8")
        self.group_size = a.get("group_size")
        if (
            isinstance(self.group_size, bool)
            or not isinstance(self.group_size, int)
            or self.group_size < 1
        ):
            raise ConfigError(f"attack.group_size={self.group_size} must be a whole number >= 1")
        self.scheme = str(a.get("scheme"))
        if self.scheme not in SCHEMES:
            raise ConfigError(f"attack.scheme={self.scheme}; use one of {', '.join(SCHEMES)}")
        try:
            self.version = metadata.version("torchao")
        except metadata.PackageNotFoundError:
            raise ConfigError(
                "attack=quantize needs torchao: pip install 'obliviate[attacks]' (or pip install torchao)"
            ) from None

    def apply(self, model: torch.nn.Module, tokenizer: Any) -> tuple[torch.nn.Module, dict]:
        original = {n: m.weight.detach().clone() for n, m in quantized_linears(model).items()}
        names = quantize_model(model, self.bits, self.group_size, self.scheme)
        worst = 0.0  # largest |w - q(w)| / (step / 2) over all weights: <= 1 by construction
        modules = dict(model.named_modules())
        for n in names:
            w = modules[n].weight
            step = group_scales(w).repeat_interleave(self.group_size, dim=1)  # (out, in)
            moved = (dequantized(w).float() - original[n].float()).abs()
            worst = max(worst, float((moved / (step / 2)).max()))
        return model, {
            "library": "torchao",
            "library_version": self.version,
            "method": "IntxWeightOnlyConfig (round to nearest, weight-only)",
            "bits": self.bits,
            "scheme": self.scheme,
            "group_size": self.group_size,
            "quantized_modules": len(names),
            "kept_full_precision": "LM head and embeddings",
            "max_change_in_half_steps": worst,
        }
