"""Quantization with torchao moves each weight by at most half a step of its group's grid;
the step is worked out here from the group's weights (absmax / 7.5 for symmetric int4)."""

from __future__ import annotations

import torch

from obliviate.attacks.quantize import dequantized, quantize_model, quantized_linears
from obliviate.models.tiny import build_tiny_model

GROUP = 32


def expected_steps(w: torch.Tensor, bits: int, scheme: str) -> torch.Tensor:
    """(out, in) grid step of each weight's group: symmetric = absmax / ((2^b - 1) / 2),
    asymmetric = (max - min) / (2^b - 1)."""
    groups = w.float().reshape(w.size(0), -1, GROUP)  # (out, in/GROUP, GROUP)
    levels = 2**bits - 1
    if scheme == "symmetric":
        step = groups.abs().amax(-1) / (levels / 2)
    else:
        step = (groups.amax(-1).clamp(min=0) - groups.amin(-1).clamp(max=0)) / levels
    return step.repeat_interleave(GROUP, dim=1)


def check_bound(bits: int, scheme: str) -> None:
    model = build_tiny_model(tokenizer="bytes", init_seed=2)
    original = {n: m.weight.detach().clone() for n, m in quantized_linears(model).items()}
    names = quantize_model(model, bits, GROUP, scheme)
    assert names == sorted(original) and len(names) == 2 * 7  # q k v o gate up down, 2 layers
    modules = dict(model.named_modules())
    for n in names:
        w0 = original[n]
        moved = (dequantized(modules[n].weight).float() - w0).abs()
        step = expected_steps(w0, bits, scheme)
        assert bool((moved <= step / 2 + 1e-6).all()), (n, float((moved / step).max()))
        assert float(moved.max()) > 0.1 * float(step.max()) / 2  # the weights did move
    assert type(model.lm_head.weight) is torch.nn.Parameter  # the head stays full precision


def test_int4_moves_each_weight_by_at_most_half_a_step_of_its_group():
    check_bound(4, "symmetric")
    check_bound(4, "asymmetric")


def test_int8_moves_each_weight_by_at_most_half_a_step_of_its_group():
    check_bound(8, "symmetric")
