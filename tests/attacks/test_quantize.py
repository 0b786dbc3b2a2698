"""Quantization with torchao moves each weight by at most half a step of its group's grid;
the step is worked out here from the group's weights (absmax / 7.5 for symmetric int4).
bitsandbytes' 4-bit codes put each weight on the nearest value of its codebook (written out
here) times its block's absmax."""

from __future__ import annotations

import pytest
import torch

from obliviate.attacks.quantize import (
    dequantized,
    quantize_model,
    quantize_model_bnb,
    quantized_linears,
)
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


# NF4 (Dettmers et al. 2023, QLoRA, appendix E): quantiles of N(0, 1) normalised to [-1, 1],
# with an exact 0; FP4 as bitsandbytes defines it (sign, 2 exponent and 1 mantissa bit, / 6,
# its smallest subnormal 1/192)
NF4 = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]  # fmt: skip
FP4_POSITIVE = [0.0, 1 / 192, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0]
FP4 = sorted({s * v for v in FP4_POSITIVE for s in (1, -1)})


@pytest.mark.parametrize("scheme, codebook", [("nf4", NF4), ("fp4", FP4)])
def test_bitsandbytes_4bit_rounds_each_weight_to_the_nearest_code_times_its_block_absmax(
    scheme, codebook
):
    model = build_tiny_model(tokenizer="bytes", init_seed=2)
    original = {n: m.weight.detach().clone() for n, m in quantized_linears(model).items()}
    names = quantize_model_bnb(model, GROUP, scheme, double_quant=False)
    assert names == sorted(original)
    code = torch.tensor(codebook)
    modules = dict(model.named_modules())
    for n in names:
        w0 = original[n]
        blocks = w0.reshape(w0.size(0), -1, GROUP)  # consecutive input weights of a row
        absmax = blocks.abs().amax(-1, keepdim=True)
        dist = (blocks / absmax).unsqueeze(-1).sub(code).abs()  # (out, blocks, GROUP, 16)
        expected = (code[dist.argmin(-1)] * absmax).reshape_as(w0)
        two = dist.topk(2, largest=False).values
        clear = (two[..., 1] - two[..., 0] > 1e-5).reshape_as(w0)  # not a tie between codes
        got = modules[n].weight.detach()
        assert torch.allclose(got[clear], expected[clear], rtol=1e-6, atol=1e-7), n
        assert len(torch.unique(got.reshape(-1, GROUP)[0])) <= 16  # one 4-bit code per weight
    assert torch.equal(
        model.lm_head.weight, build_tiny_model(tokenizer="bytes", init_seed=2).lm_head.weight
    )


def test_bitsandbytes_double_quantization_also_rounds_the_block_scales():
    plain = build_tiny_model(tokenizer="bytes", init_seed=2)
    nested = build_tiny_model(tokenizer="bytes", init_seed=2)
    quantize_model_bnb(plain, GROUP, "nf4", double_quant=False)
    quantize_model_bnb(nested, GROUP, "nf4", double_quant=True)
    a, b = plain.model.layers[0].mlp.up_proj.weight, nested.model.layers[0].mlp.up_proj.weight
    assert not torch.equal(a, b)  # the absmax values moved ...
    assert torch.allclose(a, b, rtol=0.02, atol=1e-4)  # ... by a fraction of a percent
