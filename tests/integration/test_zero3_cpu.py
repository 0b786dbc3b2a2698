"""DeepSpeed ZeRO-3 paths on CPU (2 gloo processes; needs ``pip install deepspeed``).

transformers/accelerate enable DeepSpeed in training only on a GPU, but DeepSpeed itself runs
on CPU: a ZeRO-3 partitioned tiny model must give the plain model's reference log-probs,
reference-engine log-probs, and sharded evaluation numbers and generations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "deepspeed", reason="DeepSpeed is not installed (pip install -e '.[deepspeed]')"
)


@pytest.mark.slow  # two processes; DeepSpeed builds a small CPU op on first use
def test_zero3_partitioned_model_matches_the_plain_model(tmp_path):
    worker = Path(__file__).with_name("zero3_worker.py")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        + [str(worker), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for rank in (0, 1):
        res = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert res["partitioned"], res
        assert res["ref_diff"] < 1e-4, res
        assert res["engine_diff"] < 1e-4, res
        assert res["score_diff"] < 1e-5, res
        assert res["same_generations"], res


@pytest.mark.slow  # DeepSpeed compiles its CPU Adam on first use (about a minute)
def test_offload_config_trains_with_deepspeeds_cpu_adam(tmp_path):
    """configs/accelerate/zero_stage3_offload_deepspeed.json offloads the optimizer to CPU;
    DeepSpeed then refuses a client (torch) optimizer, so the config declares one."""
    worker = Path(__file__).with_name("zero3_worker.py")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
        + [str(worker), "offload", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads((tmp_path / "offload0.json").read_text())
    assert res["optimizer"] == "DeepSpeedCPUAdam", res
    assert res["losses"][1] < res["losses"][0], res  # the step changed the weights
