"""Every config composes and ``trainer.args`` is validated (unknown keys, max_steps=0, warm-up
in epochs). The guide's commands themselves are checked from the docs by test_docs_commands.py."""

from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, REPO_ROOT, compose_config
from obliviate import config as C
from obliviate.errors import ConfigError

MODEL_YAMLS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
TRAINER_YAMLS = sorted(p.stem for p in (CONFIG_DIR / "trainer").glob("*.yaml"))
EXPERIMENT_YAMLS = sorted(
    str(p.relative_to(CONFIG_DIR / "experiment").with_suffix(""))
    for p in (CONFIG_DIR / "experiment").rglob("*.yaml")
)
# Which primary config an experiment's first folder belongs to.
PRIMARY_OF_MODE = {"unlearn": "unlearn.yaml", "finetune": "train.yaml", "eval": "eval.yaml"}
PRIMARY_YAMLS = sorted(p.name for p in CONFIG_DIR.glob("*.yaml") if "defaults" in OmegaConf.load(p))

START_MODEL = "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"


def resolved(cfg) -> dict:
    """Resolve every interpolation (a broken ``${...}`` raises here)."""
    return OmegaConf.to_container(cfg, resolve=True)


def test_the_config_tree_is_found():
    assert {"Llama-3.2-1B-Instruct", "tiny"} <= set(MODEL_YAMLS)
    assert {"SimNPO", "NPO", "GradDiff", "GradAscent", "finetune"} <= set(TRAINER_YAMLS)
    assert {"unlearn/tofu/default", "finetune/tofu/default"} <= set(EXPERIMENT_YAMLS)
    assert {"unlearn.yaml", "train.yaml"} <= set(PRIMARY_YAMLS)


@pytest.mark.parametrize("name", PRIMARY_YAMLS)
def test_every_primary_config_composes(name):
    cfg = compose_config(["task_name=t"], config_name=name)
    resolved(cfg)
    assert cfg.mode in PRIMARY_OF_MODE


@pytest.mark.parametrize("model", MODEL_YAMLS)
def test_every_model_config_composes(model):
    cfg = compose_config(["experiment=unlearn/tofu/default", f"model={model}", "task_name=t"])
    resolved(cfg)
    assert cfg.model.name == model
    assert cfg.model.template.end_of_turn
    # The unlearn experiment starts from the model's TOFU-finetuned target.
    assert cfg.model.model_args.pretrained_model_name_or_path == cfg.model.tofu_target
    ft = compose_config(
        ["experiment=finetune/tofu/default", f"model={model}", "task_name=t"], "train.yaml"
    )
    resolved(ft)
    own = OmegaConf.load(
        CONFIG_DIR / "model" / f"{model}.yaml"
    ).model_args.pretrained_model_name_or_path
    assert ft.model.model_args.pretrained_model_name_or_path == own


@pytest.mark.parametrize("trainer", TRAINER_YAMLS)
def test_every_trainer_config_composes_and_its_defaults_validate(trainer):
    name = "train.yaml" if trainer == "finetune" else "unlearn.yaml"
    cfg = compose_config([f"trainer={trainer}", "task_name=t"], config_name=name)
    resolved(cfg)
    cls = C.method_class(cfg)
    assert cfg.trainer._target_ == f"{cls.__module__}.{cls.__name__}"
    args = C.method_args(cfg, cls)
    # The YAML states every default of the method's typed arguments, with the same values.
    yaml_args = OmegaConf.to_container(cfg.trainer.method_args)
    assert yaml_args == vars(args)


@pytest.mark.parametrize("experiment", EXPERIMENT_YAMLS)
def test_every_experiment_composes(experiment):
    mode = experiment.split("/")[0]
    assert mode in PRIMARY_OF_MODE, f"experiment folder {mode!r} has no primary config"
    primary = PRIMARY_OF_MODE[mode]
    cfg = compose_config([f"experiment={experiment}", "task_name=t"], config_name=primary)
    resolved(cfg)
    assert cfg.mode == mode


def test_simnpo_defaults_are_the_guides_table():
    cfg = compose_config(["experiment=unlearn/tofu/default", "trainer=SimNPO", "task_name=t"])
    assert OmegaConf.to_container(cfg.trainer.method_args) == {
        "gamma": 0.125,
        "alpha": 1.0,
        "beta": 4.5,
        "delta": 0.0,
        "retain_loss_type": "NLL",
    }


def test_unlearn_experiment_defaults():
    cfg = compose_config(["experiment=unlearn/tofu/default", "task_name=t"])
    assert cfg.model.model_args.pretrained_model_name_or_path == START_MODEL
    assert (cfg.forget_split, cfg.retain_split, cfg.holdout_split) == (
        "forget10",
        "retain90",
        "holdout10",
    )
    assert cfg.trainer._target_ == "obliviate.methods.simnpo.SimNPO"
    assert cfg.paths.output_dir == "saves/unlearn/t"
    # The guide's table: weight decay 0.01, one warm-up epoch.
    assert cfg.trainer.args.weight_decay == 0.01
    assert cfg.trainer.args.warmup_epochs == 1.0


# ---- trainer.args validation ----------------------------------------------------------------


# The guide's unlearning settings (its commands themselves: tests/test_docs_commands.py).
GUIDE_OVERRIDES = [
    "experiment=unlearn/tofu/default",
    "trainer=SimNPO",
    "task_name=tofu_SimNPO_forget10_v1",
    "trainer.args.per_device_train_batch_size=2",
    "trainer.args.gradient_accumulation_steps=8",
]


def guide_cfg(*extra: str):
    return compose_config([*GUIDE_OVERRIDES, *extra], config_name="unlearn.yaml")


def test_unknown_trainer_arg_is_rejected_with_a_hint():
    cfg = guide_cfg("+trainer.args.learning_rat=1e-4")
    with pytest.raises(
        ConfigError, match=r"trainer\.args\.learning_rat .*did you mean 'learning_rate'"
    ):
        C.training_arguments(cfg, 400, world_size=1)


def test_max_steps_zero_is_rejected():
    with pytest.raises(ConfigError, match="max_steps=0"):
        C.training_arguments(guide_cfg("trainer.args.max_steps=0"), 400, world_size=1)


def test_batch_size_zero_is_rejected():
    with pytest.raises(ConfigError, match="per_device_train_batch_size=0"):
        C.training_arguments(
            guide_cfg("trainer.args.per_device_train_batch_size=0"), 400, world_size=1
        )


@pytest.mark.parametrize(
    ("world_size", "expected"), [(1, math.ceil(400 / 16)), (2, math.ceil(400 / 32))]
)
def test_warmup_epochs_become_steps(world_size, expected):
    # forget10 = 400 items, 2 per device x 8 accumulation x world_size per optimizer step:
    # one warm-up epoch is ceil(400 / 16) = 25 steps on one process, ceil(400 / 32) = 13 on two.
    assert expected == {1: 25, 2: 13}[world_size]
    targs = C.training_arguments(guide_cfg(), 400, world_size=world_size)
    assert targs.warmup_steps == expected


def test_warmup_uses_the_world_size_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert C.training_arguments(guide_cfg(), 400).warmup_steps == 13


def test_warmup_epochs_and_steps_together_are_rejected():
    with pytest.raises(ConfigError, match="warmup_epochs.*warmup_steps"):
        C.training_arguments(guide_cfg("+trainer.args.warmup_steps=5"), 400, world_size=1)


def test_missing_task_name_is_a_config_error():
    cfg = compose_config(["experiment=unlearn/tofu/default"])
    with pytest.raises(ConfigError, match="task_name"):
        C.require_task_name(cfg)


def test_deepspeed_offload_config_declares_its_optimizer():
    """ZeRO with the optimizer offloaded to CPU refuses transformers' (torch) AdamW
    ("ZeRO-Offload with a client provided optimizer"); the config must declare one so DeepSpeed
    builds its CPU Adam, and the accelerate config must point at this file."""
    import json

    acc = json.loads((REPO_ROOT / "configs/accelerate/zero_stage3_offload_config.json").read_text())
    assert acc["distributed_type"] == "DEEPSPEED"
    ds_path = REPO_ROOT / acc["deepspeed_config"]["deepspeed_config_file"]
    ds = json.loads(ds_path.read_text())
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["optimizer"]["type"] == "AdamW"
    assert set(ds["optimizer"]["params"].values()) == {"auto"}  # filled from trainer.args


def test_step_intervals_take_transformers_ratio_form():
    """eval_steps=0.25 means every quarter of the run (transformers' own reading); 1.5 is
    neither a whole step count nor a fraction."""
    targs = C.training_arguments(
        guide_cfg("trainer.args.eval_steps=0.25", "trainer.args.max_steps=40"), 400, world_size=1
    )
    assert targs.eval_steps == 0.25
    with pytest.raises(ConfigError, match=r"eval_steps=1.5 .*fraction in \(0, 1\)"):
        C.training_arguments(guide_cfg("trainer.args.eval_steps=1.5"), 400, world_size=1)
