"""Quantization attack: evaluate the model with its weights rounded to 4 or 8 bits.

Zhang et al. 2024 ("Catastrophic failure of LLM unlearning via quantization", arXiv
2410.16454) found that unlearning often moves the weights by less than a quantization step, so
rounding them back to a 4-bit grid restores much of the forgotten knowledge.

``attack=quantize`` quantizes a copy of the model's Linears (every one but the LM head; the head
and the embeddings stay in full precision, as bitsandbytes' 4-bit loading leaves them) with one
of two libraries, both of which run on a CPU as well as a GPU:

- ``attack.library=torchao`` (default): weight-only integer quantization
  (``IntxWeightOnlyConfig``: round to nearest on a uniform grid, one scale (and zero point if
  asymmetric) per group of ``attack.group_size`` consecutive input weights of a row; the matrix
  products use the dequantized weights). Each weight moves by at most half a step of its grid.
- ``attack.library=bitsandbytes``: 4-bit NF4 (QLoRA's normal-float codebook) or FP4, one
  absmax per block of ``attack.group_size`` weights, optionally with double quantization of the
  absmax values. bitsandbytes' 4-bit layers dequantize the weights
  to the compute dtype before every product; the attack does that once, writing the
  dequantized weights back in the model's dtype, so the evaluated model computes exactly what a
  ``Linear4bit`` with that compute dtype would. Each weight moves to the nearest codebook value
  times its block's absmax, so by at most half the widest gap of the codebook times the absmax.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import torch
from omegaconf import DictConfig

from obliviate.attacks.base import ModelAttack
from obliviate.errors import ConfigError

#: library -> its schemes (the first is the default)
SCHEMES = {"torchao": ("symmetric", "asymmetric"), "bitsandbytes": ("nf4", "fp4")}
#: bitsandbytes' 4-bit block sizes
BNB_BLOCKS = (32, 64, 128, 256, 512, 1024, 2048, 4096)
SKIPPED = ("lm_head",)  # module names kept in full precision


def quantized_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The modules the attack quantizes: every Linear but the LM head."""
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] not in SKIPPED
    }


def check_groups(targets: dict[str, torch.nn.Linear], group_size: int) -> None:
    bad = {n: m.in_features for n, m in targets.items() if m.in_features % group_size}
    if bad:
        name, width = next(iter(bad.items()))
        raise ConfigError(
            f"attack.group_size={group_size} does not divide {name}'s {width} input features; "
            "choose a divisor (e.g. 32)"
        )


def torchao_config(bits: int, group_size: int, scheme: str) -> Any:
    from torchao.quantization import IntxWeightOnlyConfig, MappingType
    from torchao.quantization.granularity import PerGroup

    mapping = MappingType.SYMMETRIC if scheme == "symmetric" else MappingType.ASYMMETRIC
    dtype = {4: torch.int4, 8: torch.int8}[bits]
    return IntxWeightOnlyConfig(
        weight_dtype=dtype, granularity=PerGroup(group_size), mapping_type=mapping
    )


def quantize_model(model: torch.nn.Module, bits: int, group_size: int, scheme: str) -> list[str]:
    """Quantize ``model`` in place with torchao (its Linears but the head); the module names."""
    from torchao.quantization import quantize_

    targets = quantized_linears(model)
    check_groups(targets, group_size)
    chosen = set(targets.values())
    quantize_(model, torchao_config(bits, group_size, scheme), filter_fn=lambda m, _: m in chosen)
    return sorted(targets)


def quantize_model_bnb(
    model: torch.nn.Module, group_size: int, scheme: str, double_quant: bool
) -> list[str]:
    """Round ``model``'s Linears (but the head) in place to bitsandbytes' 4-bit ``scheme``
    (nf4 / fp4), one absmax per ``group_size`` block; the weights are stored dequantized."""
    import bitsandbytes.functional as bnb_f

    targets = quantized_linears(model)
    check_groups(targets, group_size)
    with torch.no_grad():
        for m in targets.values():
            w = m.weight.data.contiguous()
            packed, state = bnb_f.quantize_4bit(
                w, blocksize=group_size, quant_type=scheme, compress_statistics=double_quant
            )
            m.weight.data.copy_(bnb_f.dequantize_4bit(packed, state).to(w.dtype).view_as(w))
    return sorted(targets)


def bnb_codebook(scheme: str) -> torch.Tensor:
    """bitsandbytes' 16 values of a 4-bit code (normalised to [-1, 1])."""
    import bitsandbytes.functional as bnb_f

    return bnb_f.get_4bit_type(scheme, device="cpu").float()


def dequantized(weight: torch.Tensor) -> torch.Tensor:
    """The float weights a quantized module computes with."""
    return weight.dequantize() if hasattr(weight, "dequantize") else weight


def group_scales(weight: torch.Tensor) -> torch.Tensor:
    """(out, in / group) quantization step of each group of a torchao-quantized weight."""
    return weight.scale.float()


def block_absmax(weight: torch.Tensor, group_size: int) -> torch.Tensor:
    """(out, in) absmax of the block each weight belongs to."""
    w = weight.float()
    blocks = w.reshape(w.size(0), -1, group_size).abs().amax(-1)
    return blocks.repeat_interleave(group_size, dim=1)


def library_version(library: str) -> str:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            f"attack=quantize attack.library={library} needs {library}: "
            f"pip install 'obliviate[attacks]' (or pip install {library})"
        ) from None


class QuantizeAttack(ModelAttack):
    name = "quantize"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        a = cfg.attack
        self.library = str(a.get("library") or "torchao")
        if self.library not in SCHEMES:
            raise ConfigError(f"attack.library={self.library}; use one of {', '.join(SCHEMES)}")
        self.bits = a.get("bits")
        if self.bits not in (4, 8):
            raise ConfigError(f"attack.bits={self.bits}; use 4 or 8")
        if self.library == "bitsandbytes" and self.bits != 4:
            raise ConfigError(
                f"attack.bits={self.bits} with attack.library=bitsandbytes: its weight-only "
                "quantization is 4-bit (nf4, fp4); use attack.library=torchao for 8 bits"
            )
        self.group_size = self._group_size(a.get("group_size"))
        self.scheme = self._scheme(a.get("scheme"))
        self.double_quant = a.get("double_quant") or False
        if not isinstance(self.double_quant, bool) or (
            self.double_quant and self.library != "bitsandbytes"
        ):
            raise ConfigError(
                f"attack.double_quant={self.double_quant}: true or false, and only with "
                "attack.library=bitsandbytes (it quantizes the block absmax values too)"
            )
        self.version = library_version(self.library)

    def _group_size(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"attack.group_size={value} must be a whole number >= 1")
        if self.library == "bitsandbytes" and value not in BNB_BLOCKS:
            raise ConfigError(
                f"attack.group_size={value}: bitsandbytes' block size is one of "
                f"{', '.join(map(str, BNB_BLOCKS))}"
            )
        return value

    def _scheme(self, value: Any) -> str:
        schemes = SCHEMES[self.library]
        if value is None:
            return schemes[0]
        if str(value) not in schemes:
            other = next(lib for lib in SCHEMES if lib != self.library)
            raise ConfigError(
                f"attack.scheme={value} is not a {self.library} scheme; use {' or '.join(schemes)} "
                f"({' / '.join(SCHEMES[other])} need attack.library={other})"
            )
        return str(value)

    def apply(self, model: torch.nn.Module, tokenizer: Any) -> tuple[torch.nn.Module, dict]:
        original = {n: m.weight.detach().clone() for n, m in quantized_linears(model).items()}
        if self.library == "torchao":
            names = quantize_model(model, self.bits, self.group_size, self.scheme)
        else:
            names = quantize_model_bnb(model, self.group_size, self.scheme, self.double_quant)
        modules = dict(model.named_modules())
        return model, {
            "library": self.library,
            "library_version": self.version,
            "method": self._method(),
            "bits": self.bits,
            "scheme": self.scheme,
            "group_size": self.group_size,
            "double_quant": self.double_quant,
            "quantized_modules": len(names),
            "kept_full_precision": "LM head and embeddings",
            **self._bound(names, original, modules),
        }

    def _method(self) -> str:
        if self.library == "torchao":
            return "IntxWeightOnlyConfig (round to nearest, weight-only)"
        return (
            "bitsandbytes.functional.quantize_4bit (nearest codebook value x block absmax), "
            "weights dequantized to the model's dtype for evaluation (as Linear4bit computes)"
        )

    def _bound(
        self,
        names: list[str],
        original: dict[str, torch.Tensor],
        modules: dict[str, torch.nn.Module],
    ) -> dict[str, float]:
        """The largest move of any weight against the scheme's own bound (<= 1 by construction)."""
        worst = 0.0
        for n in names:
            w = modules[n].weight
            moved = (dequantized(w).float() - original[n].float()).abs()
            if self.library == "torchao":  # in half steps of the group's uniform grid
                step = group_scales(w).repeat_interleave(self.group_size, dim=1)
                worst = max(worst, float((moved / (step / 2)).max()))
            else:  # in units of the block absmax
                absmax = block_absmax(original[n], self.group_size).clamp(min=1e-12)
                worst = max(worst, float((moved / absmax).max()))
        if self.library == "torchao":
            return {"max_change_in_half_steps": worst}
        # the nearest of 16 codes is at most half the codebook's widest gap away
        half_gap = float(bnb_codebook(self.scheme).sort().values.diff().max()) / 2
        return {"max_change_over_block_absmax": worst, "bound_over_block_absmax": half_gap}
