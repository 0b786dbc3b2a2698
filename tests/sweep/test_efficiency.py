"""The training receipt's cost numbers: tokens counted where they enter the model, the FLOPs
estimate, and the receipt a real training run writes."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import torch

from obliviate.models.tiny import build_tiny_model
from obliviate.utils.efficiency import EfficiencyMeter, flops_estimate, matmul_params


def llama_params(v: int, d: int, layers: int, heads: int, kv: int, inter: int) -> int:
    """Parameters of a bias-free Llama in matrix products: every layer, the final norm and the
    output head (V x d), not the input embedding's look-up (counted once if the two are tied)."""
    kv_dim = d // heads * kv
    layer = d * d + 2 * d * kv_dim + d * d + 3 * d * inter + 2 * d  # q, k+v, o, mlp, 2 norms
    return layers * layer + d + v * d


def test_meter_counts_real_tokens_by_pass_kind_and_estimates_flops():
    model = build_tiny_model(tokenizer="bytes")
    n = llama_params(261, 32, 2, 4, 2, 64)
    meter = EfficiencyMeter().attach(model)
    assert meter.n_params == matmul_params(model) == n
    ids = torch.randint(0, 255, (2, 5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # 8 real tokens, 2 pads
    model(input_ids=ids, attention_mask=mask).logits.sum().backward()
    ref = copy.deepcopy(model)  # a frozen reference copy keeps counting into the same meter
    with torch.no_grad():
        model(input_ids=ids[:1, :4], attention_mask=torch.ones(1, 4, dtype=torch.long))
        ref(input_ids=ids, attention_mask=mask)
    assert (meter.train_tokens, meter.forward_tokens) == (8, 4 + 8)

    meter.on_train_begin(None, SimpleNamespace(global_step=3), None)  # resumed at step 3
    meter.start -= 2.0  # as if two seconds had passed
    meter.on_train_end(None, SimpleNamespace(global_step=7), None)
    s = meter.summary()
    assert s["steps"] == 4 and s["seconds_per_step"] == pytest.approx(
        s["train_seconds"] / 4, rel=1e-3
    )
    assert s["tokens_per_second"] == pytest.approx(8 / s["train_seconds"], rel=1e-3)
    assert s["train_flops_estimate"] == 6 * n * 8 + 2 * n * 12 == flops_estimate(n, 8, 12)
    assert s["peak_memory_mib"] > 0 and s["memory_kind"] in ("cpu_peak_rss", "cuda_max_allocated")


def test_a_training_run_writes_its_cost_into_the_receipt(cli_simnpo_run):
    _, proc, out = cli_simnpo_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    receipt = json.loads((out / "receipt.json").read_text())
    eff = receipt["efficiency"]
    n = llama_params(128256, 32, 2, 4, 2, 64)  # model=tiny: the Llama-3 vocabulary
    assert eff["params_counted"] == n and eff["steps"] == receipt["global_steps"] == 2
    assert eff["forward_only_tokens"] == 0  # SimNPO needs no reference model
    assert eff["train_tokens"] > 0
    assert eff["train_flops_estimate"] == 6 * n * eff["train_tokens"]
    assert eff["seconds_per_step"] == pytest.approx(eff["train_seconds"] / 2, rel=1e-2)
    assert eff["wall_seconds"] >= eff["train_seconds"] > 0
    assert receipt["code"]["source_sha256"] and len(receipt["code"]["source_sha256"]) == 64
