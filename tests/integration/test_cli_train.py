"""The guide's entry point end to end: ``python src/train.py ...`` from the repository root, as
a subprocess, on the tiny model (2 steps), then the same command again without overwrite=true."""

from __future__ import annotations

import pytest

from conftest import run_cli, snapshot

RUN_FILES = (
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "obliviate_config.yaml",
    "receipt.json",
    "trainer_log.txt",
)


@pytest.fixture(scope="module")
def first_run(cli_simnpo_run):
    return cli_simnpo_run


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
    assert proc.returncode == 0, proc.stderr[-3000:]  # needs the first run's folder
    before = snapshot(out)
    again = run_cli(cmd)
    assert again.returncode == 2, again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, again.stderr
    assert str(out) in errors[0] and "overwrite=true" in errors[0]
    assert snapshot(out) == before  # same files, same bytes, same mtimes
