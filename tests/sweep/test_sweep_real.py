"""A real sweep from the command line: two SimNPO points of the tiny byte model on built-in
authors, sent through Hydra's submitit_local launcher (each point its own process, as on a
SLURM cluster), each trained and evaluated; then ``obliviate compare`` on the sweep folder.
Slow (two trainings and evaluations in subprocesses): ``pytest -m slow tests/sweep``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

SWEEP = [
    "-m",
    "task_name=local_grid",
    "model=tiny-bytes",
    "tofu_data=builtin",
    "forget_split=forget20",
    "retain_split=retain80",
    "trainer=SimNPO",
    "trainer.args.max_steps=1",
    "trainer.args.per_device_train_batch_size=2",
    "trainer.args.gradient_accumulation_steps=1",
    "trainer.method_args.beta=2.5,4.5",
    "eval.max_items=2",
    "eval.utility_items=2",
    "eval.max_new_tokens=4",
    "hydra/launcher=submitit_local",
    "hydra.launcher.timeout_min=10",
    "hydra.launcher.cpus_per_task=1",
]


def run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO_ROOT / "src"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_submitit_local_sweep_then_compare(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc = run([str(REPO_ROOT / "src/train.py"), *SWEEP], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep_dir = tmp_path / "saves/sweep/local_grid"
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    assert [p["status"] for p in sweep["points"]] == ["complete", "complete"]
    assert (sweep_dir / ".submitit").is_dir()  # the points went through submitit's executor
    for p in sweep["points"]:
        run_dir = sweep_dir / p["run_dir"]
        assert (run_dir / "evals/TOFU_SUMMARY.json").is_file()
        eff = json.loads((run_dir / "receipt.json").read_text())["efficiency"]
        assert eff["steps"] == 1 and eff["train_tokens"] > 0

    again = run([str(REPO_ROOT / "src/train.py"), *SWEEP], tmp_path)  # resumed: nothing to redo
    assert again.returncode == 0 and "2 points: 2 complete" in again.stdout + again.stderr
    # each submitit job logs into its own file under .submitit/<job id>/
    logs = "".join(f.read_text() for f in sweep_dir.glob(".submitit/*/*_log.out"))
    assert logs.count("receipts match (config, code, data): skipped") == 2

    cmp = run(
        ["-m", "obliviate", "compare", str(sweep_dir), "--rule", "max:-forget_Q_A_Prob"], tmp_path
    )
    assert cmp.returncode == 0, cmp.stderr[-3000:]
    report = json.loads((sweep_dir / "compare/comparison.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["beta=2.5", "beta=4.5"]
    probs = [r["forget_Q_A_Prob"] for r in report["rows"]]
    assert report["selected"] == report["rows"][probs.index(min(probs))]["name"]
    assert "Selected: " + report["selected"] in cmp.stdout
