"""The code paths only a GPU takes: fused accumulation (on by default there) logs the losses of
plain accumulation, and a bfloat16 model trains in bf16 with finite losses. Marked ``gpu``
(deselected by default): run with ``python -m pytest -m gpu tests/gpu`` on a CUDA machine."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import compose_config, write_mini_tofu
from obliviate.training import preflight, run_training

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def step_logs(out: Path) -> list[dict[str, float]]:
    rows = []
    for line in (out / "trainer_log.txt").read_text().splitlines():
        fields = dict(part.split("=", 1) for part in line.split())
        if "loss" in fields:
            rows.append({k: float(v) for k, v in fields.items()})
    return rows


def overrides(data: Path, root: Path, task: str, *extra: str) -> list[str]:
    return [
        "experiment=unlearn/tofu/default",
        "trainer=SimNPO",
        "model=tiny-bytes",
        f"tofu_data={data}",
        "forget_split=forget20",
        "retain_split=retain80",
        f"task_name={task}",
        f"paths.root={root}",
        "trainer.args.max_steps=2",
        "trainer.args.per_device_train_batch_size=2",
        "trainer.args.gradient_accumulation_steps=4",
        "trainer.args.logging_steps=1",
        "trainer.args.learning_rate=1e-3",  # step 2 then runs on visibly changed weights
        "trainer.args.warmup_epochs=0",
        "trainer.method_args.beta=0.05",  # an unsaturated forget term at the random start
        *extra,
    ]


def test_auto_fuses_on_cuda_and_logs_the_losses_of_plain_accumulation(tmp_path):
    data = write_mini_tofu(tmp_path / "tofu")
    auto = compose_config(overrides(data, tmp_path, "auto"))
    assert preflight(auto).loss_group_size == 2  # auto = fused on a GPU: 4 x 2 rows per pass
    fused = run_training(auto)
    plain = run_training(
        compose_config(overrides(data, tmp_path, "plain", "trainer.fuse_accumulation=false"))
    )
    a, b = step_logs(fused), step_logs(plain)
    assert len(a) == len(b) == 2
    for x, y in zip(a, b, strict=True):
        for key in ("loss", "forget_loss", "retain_loss", "grad_norm"):
            assert x[key] == pytest.approx(y[key], rel=1e-3, abs=1e-5), key
    wa, wb = load_file(fused / "model.safetensors"), load_file(plain / "model.safetensors")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-5)


def test_bfloat16_model_trains_in_bf16_with_finite_losses(tmp_path):
    data = write_mini_tofu(tmp_path / "tofu")
    cfg = compose_config(overrides(data, tmp_path, "bf16", "model.model_args.dtype=bfloat16"))
    assert preflight(cfg).training_args.bf16  # bf16: null = on for bfloat16 weights on a GPU
    out = run_training(cfg)
    logs = step_logs(out)
    assert len(logs) == 2
    assert all(math.isfinite(v) for row in logs for v in row.values())
    weights = load_file(out / "model.safetensors")
    assert all(torch.isfinite(w.float()).all() for w in weights.values())
