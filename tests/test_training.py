"""run_training's start-up guards: run folders are never mixed, and a method meets the data its
config mode makes (forget/retain pairs for unlearning, plain QA for finetuning)."""

from __future__ import annotations

import pytest

from conftest import TINY_TRAIN, compose_config, write_mini_tofu
from obliviate.errors import ConfigError
from obliviate.training import TrainerLogFile, prepare_output_dir, run_training


@pytest.fixture
def no_model_loading(monkeypatch):
    def boom(*args, **kwargs):
        pytest.fail("a model/tokenizer was loaded before the config error was raised")

    monkeypatch.setattr("obliviate.training.load_model", boom)
    monkeypatch.setattr("obliviate.training.load_tokenizer", boom)


@pytest.mark.parametrize(
    ("config_name", "overrides", "pattern"),
    [
        ("unlearn.yaml", ["experiment=unlearn/tofu/default", "trainer=finetune"], "train.yaml"),
        (
            "train.yaml",
            ["experiment=finetune/tofu/default", "trainer=SimNPO", "train_split=forget20"],
            "unlearn.yaml",
        ),
    ],
)
def test_method_and_config_mode_must_match(
    tmp_path, no_model_loading, config_name, overrides, pattern
):
    data = write_mini_tofu(tmp_path / "tofu")
    cfg = compose_config(
        [
            *overrides,
            *TINY_TRAIN,
            "forget_split=forget20",
            "retain_split=retain80",
            "task_name=t",
            f"tofu_data={data}",
            f"paths.output_dir={tmp_path / 'run'}",
        ],
        config_name=config_name,
    )
    with pytest.raises(ConfigError, match=pattern):
        run_training(cfg)
    assert not (tmp_path / "run").exists()  # nothing half-made to trip over on the next run


def test_new_and_empty_run_folders_are_accepted(tmp_path):
    assert prepare_output_dir(tmp_path / "a" / "b", overwrite=False, resume=None).is_dir()
    (tmp_path / "empty").mkdir()
    assert (
        prepare_output_dir(tmp_path / "empty", overwrite=False, resume=None) == tmp_path / "empty"
    )


def test_non_empty_run_folder_needs_overwrite(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.safetensors").write_text("old")
    with pytest.raises(ConfigError, match="overwrite=true"):
        prepare_output_dir(out, overwrite=False, resume=None)
    assert (out / "model.safetensors").read_text() == "old"


def test_overwrite_clears_the_old_run(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-100").mkdir(parents=True)
    (out / "trainer_log.txt").write_text("step=1 loss=3\n")
    prepare_output_dir(out, overwrite=True, resume=None)
    assert out.is_dir() and list(out.iterdir()) == []


def test_resuming_keeps_the_folder(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-100").mkdir(parents=True)
    prepare_output_dir(out, overwrite=False, resume=str(out / "checkpoint-100"))
    assert (out / "checkpoint-100").is_dir()


def test_trainer_log_file_puts_losses_first(tmp_path):
    from transformers import TrainerState

    state = TrainerState()
    state.global_step, state.epoch = 3, 0.15
    state.is_world_process_zero = True
    log = TrainerLogFile(tmp_path / "trainer_log.txt")
    log.on_log(
        None,
        state,
        None,
        logs={
            "grad_norm": 1.5,
            "retain_loss": 2.0,
            "loss": 0.25,
            "forget_loss": -1.0,
            "learning_rate": 1e-5,
            "epoch": 0.15,
        },
    )
    assert (tmp_path / "trainer_log.txt").read_text() == (
        "step=3 epoch=0.15 loss=0.25 forget_loss=-1 retain_loss=2 learning_rate=1e-05 grad_norm=1.5\n"
    )
