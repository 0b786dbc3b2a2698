"""Fused accumulation (the GPU default: the micro-batches of one optimizer step in one pass)
logs the same losses and gradient norm as plain accumulation: the refusal part, the per-group
reference logits and RMU's own loss loop all respect the micro-batch groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import compose_config, write_mini_tofu
from obliviate.training import run_training


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return write_mini_tofu(tmp_path_factory.mktemp("tofu_mini"))


def step_logs(out: Path) -> list[dict[str, float]]:
    lines = (out / "trainer_log.txt").read_text().splitlines()
    entries = [
        {k: float(v) for k, _, v in (p.partition("=") for p in line.split())} for line in lines
    ]
    return [e for e in entries if "loss" in e]


@pytest.mark.parametrize(
    "overrides",
    [
        ("experiment=unlearn/tofu/idk", "trainer=IdkDPO"),
        ("experiment=unlearn/tofu/default", "trainer=UNDIAL", "trainer.method_args.alpha=1.0"),
        ("experiment=unlearn/tofu/default", "trainer=RMU"),
    ],
    ids=["IdkDPO", "UNDIAL", "RMU"],
)
def test_fused_accumulation_logs_the_same_losses(mini, byte_start_model, tmp_path, overrides):
    logs = {}
    for fuse in ("true", "false"):
        cfg = compose_config(
            [
                *overrides,
                "model=tiny-bytes",
                f"model.tofu_target={byte_start_model}",
                f"tofu_data={mini}",
                "forget_split=forget20",
                "retain_split=retain80",
                f"task_name=fuse_{fuse}",
                f"paths.output_dir={tmp_path / fuse}",
                "trainer.args.max_steps=2",
                "trainer.args.per_device_train_batch_size=2",
                "trainer.args.gradient_accumulation_steps=3",
                "trainer.args.logging_steps=1",
                "trainer.args.warmup_epochs=0",
                "trainer.args.learning_rate=1e-3",
                f"trainer.fuse_accumulation={fuse}",
            ]
        )
        logs[fuse] = step_logs(run_training(cfg))
    assert len(logs["true"]) == len(logs["false"]) == 2
    for a, b in zip(logs["true"], logs["false"], strict=True):
        for key in ("loss", "forget_loss", "retain_loss", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
