"""The sweep's orchestration along its real path (Hydra's multirun, basic sweeper and launcher,
point folders, sweep.json, point.json, reuse by receipts) with training and evaluation replaced
by fakes that write what the real ones write, so the whole flow takes seconds. The real
training + evaluation of a sweep is tests/sweep/test_sweep_real.py (slow)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from obliviate.sweep.run import run_sweep

BASE = [
    "task_name=grid",
    "model=tiny-bytes",
    "tofu_data=builtin",
    "forget_split=forget20",
    "retain_split=retain80",
    "trainer=SimNPO",
    "trainer.args.learning_rate=1e-5",
    "trainer.method_args.beta=2.5,3.5",
]
# Hydra names each point's folder by its swept overrides
FIRST, SECOND = "trainer.method_args.beta=2.5", "trainer.method_args.beta=3.5"


class Fakes:
    """run_training / run_eval stand-ins: the files the real ones leave, and a call log."""

    def __init__(self) -> None:
        self.trained: list[str] = []
        self.evaluated: list[str] = []
        self.stop_at: int | None = None  # KeyboardInterrupt on this training call (1-based)

    def run_training(self, cfg) -> Path:
        out = Path(cfg.paths.output_dir)
        if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
            raise AssertionError(f"training into a non-empty {out} without overwrite")
        self.trained.append(out.name)
        if self.stop_at == len(self.trained):
            (out / "trainer_log.txt").write_text("step=1\n")  # an interrupted run's leftovers
            raise KeyboardInterrupt
        for f in out.iterdir() if out.is_dir() else []:
            f.unlink() if f.is_file() else __import__("shutil").rmtree(f)
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(b"w")
        (out / "obliviate_config.yaml").write_text("x: 1\n")
        eff = {"train_seconds": 2.0, "seconds_per_step": 1.0, "peak_memory_mib": 100.0}
        (out / "receipt.json").write_text(json.dumps({"efficiency": eff}))
        return out

    def run_eval(self, cfg) -> Path:
        out = Path(cfg.paths.output_dir)
        model = Path(cfg.model.model_args.pretrained_model_name_or_path)
        assert out == model / "evals" and (model / "model.safetensors").is_file()
        self.evaluated.append(model.name)
        beta = float(model.name.split("beta=")[1])
        out.mkdir(parents=True, exist_ok=True)
        summary = {"forget_quality": beta / 10, "model_utility": 0.6 - beta / 100}
        (out / "TOFU_SUMMARY.json").write_text(json.dumps(summary))
        (out / "eval_receipt.json").write_text("{}")
        return out


@pytest.fixture
def fakes(monkeypatch, tmp_path) -> Fakes:
    f = Fakes()
    monkeypatch.setattr("obliviate.training.run_training", f.run_training)
    monkeypatch.setattr("obliviate.eval.runner.run_eval", f.run_eval)
    monkeypatch.chdir(tmp_path)
    return f


def sweep_file(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "saves/sweep/grid/sweep.json").read_text())


def test_a_sweep_runs_its_points_resumes_after_an_interruption_and_reuses_by_receipts(
    fakes, tmp_path, caplog
):
    # In-process points keep the process's logging (no Hydra job logging): read obliviate's log
    caplog.set_level(logging.INFO, logger="obliviate")
    fakes.stop_at = 2  # Ctrl-C during the second point's training: it leaves a partial run
    with pytest.raises(KeyboardInterrupt):
        run_sweep("unlearn", BASE)
    out = tmp_path / "saves/sweep/grid"
    sweep = sweep_file(tmp_path)
    assert sweep["swept"] == ["trainer.method_args.beta"]
    assert [(p["name"], p["status"]) for p in sweep["points"]] == [
        (FIRST, "complete"),
        (SECOND, "interrupted"),
    ]
    point = json.loads((out / FIRST / "point.json").read_text())
    assert point["train"]["files"] == ["model.safetensors", "obliviate_config.yaml", "receipt.json"]
    assert set(point["train"]["data_sha256"]) == {"forget20", "retain80", "full"}
    assert point["eval"]["files"] == ["TOFU_SUMMARY.json", "eval_receipt.json"]

    # The same command resumes: the finished point is skipped, the interrupted one redone.
    fakes.stop_at, fakes.trained, fakes.evaluated = None, [], []
    caplog.clear()
    run_sweep("unlearn", BASE)
    log = caplog.text
    assert fakes.trained == fakes.evaluated == [SECOND]
    assert f"point #0 ({FIRST}): complete, receipts match (config, code, data): skipped" in log
    assert f"point #1 ({SECOND}): training (not finished)" in log
    assert {p["status"] for p in sweep_file(tmp_path)["points"]} == {"complete"}

    # Files gone, a changed config, code or data: tests/sweep/test_record.py.


def test_a_bad_value_in_one_point_stops_the_sweep_before_anything_runs(fakes, tmp_path):
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError, match="learning_rate"):
        run_sweep("unlearn", [*BASE[:-2], "trainer.args.learning_rate=1e-5,-1"])
    assert fakes.trained == [] and not (tmp_path / "saves").exists()
    with pytest.raises(ConfigError, match="task_name"):
        run_sweep("unlearn", BASE[1:])
