"""The guide's entry point end to end: ``python src/train.py ...`` from the repository root, as
a subprocess, on the tiny model (2 steps), then the same command again without overwrite=true."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SHARED_TOFU, shared_tofu_available, write_mini_tofu

RUN_FILES = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "obliviate_config.yaml",
    "receipt.json",
    "trainer_log.txt",
)


def train_command(tofu_data: str, forget: str, retain: str, root: Path) -> list[str]:
    return [
        sys.executable, "src/train.py",
        "--config-name=unlearn.yaml",
        "experiment=unlearn/tofu/default",
        "trainer=SimNPO",
        f"forget_split={forget}",
        f"retain_split={retain}",
        "task_name=ci_simnpo",
        "model=tiny",
        f"tofu_data={tofu_data}",
        "trainer.args.max_steps=2",
        "trainer.args.per_device_train_batch_size=2",
        "trainer.args.gradient_accumulation_steps=1",
        "trainer.args.eval_strategy=no",
        f"paths.root={root}",
    ]  # fmt: skip


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("saves")
    if shared_tofu_available():
        # As the issue writes it: relative to the repository root.
        cmd = train_command(os.path.relpath(SHARED_TOFU, REPO_ROOT), "forget01", "retain99", root)
    else:  # the same command on the generated mini-TOFU
        data = write_mini_tofu(tmp_path_factory.mktemp("tofu_mini"))
        cmd = train_command(str(data), "forget20", "retain80", root)
    proc = run(cmd)
    return cmd, proc, root / "unlearn" / "ci_simnpo"


def test_train_command_writes_a_complete_run(first_run):
    _, proc, out = first_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"saved to {out}" in proc.stdout
    missing = [f for f in RUN_FILES if not (out / f).is_file()]
    assert not missing, f"missing {missing} in {out}"
    log = (out / "trainer_log.txt").read_text().splitlines()
    assert log[0].startswith("step=1 ") and "forget_loss=" in log[0] and "retain_loss=" in log[0]
    assert log[-1].startswith("step=2 ")


def test_rerun_without_overwrite_refuses_and_leaves_the_run_untouched(first_run):
    cmd, proc, out = first_run
    if proc.returncode != 0:
        pytest.skip("the first run failed (reported by the test above)")
    before = snapshot(out)
    again = run(cmd)
    assert again.returncode == 2, again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, again.stderr
    assert str(out) in errors[0] and "overwrite=true" in errors[0]
    assert snapshot(out) == before  # same files, same bytes, same mtimes
