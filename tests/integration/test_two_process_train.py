"""The issue's CPU scale-out check: ``accelerate launch --num_processes 2 --cpu src/train.py``
trains as two processes, and with the same seed and effective batch it logs the same losses at
every step as one process, while the two ranks train on different forget and retain items."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import REPO_ROOT, write_mini_tofu
from obliviate.launch import requested_cpu_processes

COMMON = [
    "--config-name=unlearn.yaml",
    "experiment=unlearn/tofu/default",
    "model=tiny",
    "trainer=SimNPO",
    "forget_split=forget20",
    "retain_split=retain80",
    "holdout_split=null",
    "trainer.args.per_device_train_batch_size=2",
    "trainer.effective_batch_size=4",  # 1 process: accumulation 2; 2 processes: 1
    "trainer.args.num_train_epochs=2",
    "trainer.args.logging_steps=1",
    "trainer.args.learning_rate=1e-3",
    "trainer.record_data_order=true",
    "seed=3",
]


def parse_log(path: Path) -> list[dict[str, float]]:
    rows = []
    for line in path.read_text().splitlines():
        fields = dict(part.split("=", 1) for part in line.split())
        if "loss" in fields:
            rows.append({k: float(v) for k, v in fields.items()})
    return rows


def data_order(folder: Path) -> dict[int, dict[int, dict[str, list[int]]]]:
    """rank -> step -> part -> item indices (micro-batches of one step concatenated)."""
    out: dict[int, dict[int, dict[str, list[int]]]] = {}
    for path in sorted(folder.glob("data_order.rank*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            step = out.setdefault(rec["rank"], {}).setdefault(rec["step"], {})
            for part in ("forget", "retain"):
                step.setdefault(part, []).extend(rec[part])
    return out


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_cpu_process_count_is_read_from_the_accelerate_command_line():
    launcher = ["/venv/bin/python", "/venv/bin/accelerate", "launch"]
    assert requested_cpu_processes([*launcher, "--num_processes", "2", "--cpu", "t.py"]) == 2
    assert requested_cpu_processes([*launcher, "--cpu", "--num_processes=3", "t.py"]) == 3
    assert requested_cpu_processes([*launcher, "--num_processes", "2", "t.py"]) == 1  # GPU run
    # an option of the training script is not the launcher's
    assert requested_cpu_processes([*launcher, "--cpu", "t.py", "--num_processes", "4"]) == 1


@pytest.mark.slow  # two trainings, one of them two processes: ~2 min on 2 cores
def test_two_cpu_processes_log_the_losses_of_one(tmp_path):
    data = write_mini_tofu(tmp_path / "tofu")
    one_dir, two_dir = tmp_path / "one", tmp_path / "two"
    base = [*COMMON, f"tofu_data={data}", "task_name=t"]
    one = run([sys.executable, "src/train.py", *base, f"paths.output_dir={one_dir}"])
    assert one.returncode == 0, one.stderr[-3000:]
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    two = run(
        [accelerate, "launch", "--num_processes", "2", "--cpu", "src/train.py"]
        + [*base, f"paths.output_dir={two_dir}"]
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert (
        "world size 2 (DDP, CPU), per-device batch 2, accumulation 1, effective batch 4"
        in two.stderr
    )
    assert (
        "world size 1 (one process), per-device batch 2, accumulation 2, effective batch 4"
        in one.stderr
    )

    log1, log2 = parse_log(one_dir / "trainer_log.txt"), parse_log(two_dir / "trainer_log.txt")
    assert [r["step"] for r in log1] == [r["step"] for r in log2] == list(range(1, 11))
    for a, b in zip(log1, log2, strict=True):
        for key in ("loss", "forget_loss", "retain_loss", "grad_norm"):
            assert math.isclose(a[key], b[key], rel_tol=1e-4, abs_tol=1e-5), (a["step"], key)

    order1, order2 = data_order(one_dir), data_order(two_dir)
    assert set(order2) == {0, 1}
    for step in range(1, 11):
        r0, r1 = order2[0][step], order2[1][step]
        assert not set(r0["retain"]) & set(r1["retain"]), step  # ranks see different items
        assert not set(r0["forget"]) & set(r1["forget"]), step
        for part in ("forget", "retain"):  # together exactly what one process saw
            assert sorted(r0[part] + r1[part]) == sorted(order1[0][step][part]), (step, part)

    w1 = load_file(one_dir / "model.safetensors")
    w2 = load_file(two_dir / "model.safetensors")
    for name, t in w1.items():
        assert (t - w2[name]).abs().max().item() < 1e-4, name
