"""Interrupted and resumed runs end where uninterrupted ones do; a NaN loss stops a run
without saving a model from the bad step."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from conftest import compose_config, write_mini_tofu
from obliviate.training import TrainingDiverged, run_training


def overrides(data, root, task, *extra):
    return [
        "experiment=unlearn/tofu/default",
        "trainer=NPO",
        "model=tiny-bytes",
        f"tofu_data={data}",
        "forget_split=forget20",
        "retain_split=retain80",
        f"task_name={task}",
        f"paths.root={root}",
        "trainer.args.per_device_train_batch_size=2",
        "trainer.args.gradient_accumulation_steps=2",
        "trainer.args.max_steps=7",
        "trainer.args.save_strategy=steps",
        "trainer.args.save_steps=6",
        "trainer.args.learning_rate=1e-3",
        "trainer.args.logging_steps=1",
        *extra,
    ]


class Interrupt(TrainerCallback):
    """Simulates a crash after the checkpoint of step 6 is on disk (the second epoch's first
    step), before step 7 is saved."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 7:
            raise KeyboardInterrupt("simulated interruption at step 7")


def test_interrupted_then_resumed_run_matches_uninterrupted(tmp_path):
    # mini-TOFU: 20 forget items / (2 x 2) = 5 steps per epoch: the resume at step 6 is in the
    # second epoch, whose retain pairing must be redrawn exactly as in the uninterrupted run.
    # NPO: the resumed run also needs the reference log-probs of the start model, not of
    # checkpoint-6.
    data = write_mini_tofu(tmp_path / "tofu")
    whole = run_training(compose_config(overrides(data, tmp_path, "whole")))
    # One warm-up epoch (the default) of the data as loaded: 5 steps, so the learning rate
    # logged at step s (the one step s used) is 1e-3 (s - 1) / 5 until step 6.
    lrs = [
        float(line.split("learning_rate=")[1].split()[0])
        for line in (whole / "trainer_log.txt").read_text().splitlines()
        if "learning_rate=" in line
    ]
    assert lrs[:6] == pytest.approx([1e-3 * s / 5 for s in range(6)], abs=1e-9)

    with pytest.raises(KeyboardInterrupt):
        run_training(compose_config(overrides(data, tmp_path, "cut")), callbacks=[Interrupt()])
    cut = tmp_path / "unlearn" / "cut"
    assert (cut / "checkpoint-6").is_dir() and not (cut / "model.safetensors").exists()
    resumed = run_training(
        compose_config(overrides(data, tmp_path, "cut", "trainer.args.resume_from_checkpoint=true"))
    )

    a = load_file(whole / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    start = load_file(cut / "checkpoint-6" / "model.safetensors")
    assert any(not torch.equal(start[k], a[k]) for k in a)  # step 7 really changed the weights
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


class PoisonAtStep(TrainerCallback):
    """Makes the weights NaN after step 2's update, so step 3's loss is NaN."""

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    data = write_mini_tofu(tmp_path / "tofu")
    cfg = compose_config(
        overrides(data, tmp_path, "nan", "trainer.args.save_steps=2", "trainer.args.max_steps=4")
    )
    with pytest.raises(TrainingDiverged, match=r"step 3.*checkpoint-2"):
        run_training(cfg, callbacks=[PoisonAtStep()])
    run = tmp_path / "unlearn" / "nan"
    assert (run / "checkpoint-2").is_dir()
    assert not (run / "checkpoint-4").exists() and not (run / "model.safetensors").exists()
    log = (run / "trainer_log.txt").read_text()
    assert "step=3" in log and "nan" in log.lower()
