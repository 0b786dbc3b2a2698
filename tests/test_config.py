"""Every config composes, the guide's commands compose verbatim, and ``trainer.args`` is
validated (unknown keys, max_steps=0, warm-up in epochs)."""

from __future__ import annotations

import math
import shlex

import pytest
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, REPO_ROOT, compose_config
from obliviate import config as C
from obliviate import training as T
from obliviate.errors import ConfigError
from obliviate.models.loading import check_model_path

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


# ---- the guide's commands, verbatim ---------------------------------------------------------

GUIDE_1_METHOD_2 = r"""
CUDA_VISIBLE_DEVICES=4 HYDRA_FULL_ERROR=1 python src/train.py \
    --config-name=unlearn.yaml \
    experiment=unlearn/tofu/default \
    trainer=SimNPO \
    forget_split=forget10 \
    retain_split=retain90 \
    task_name=tofu_SimNPO_forget10_v1 \
    model.model_args.attn_implementation=eager \
    trainer.args.learning_rate=5e-5 \
    trainer.args.num_train_epochs=20 \
    trainer.args.per_device_train_batch_size=2 \
    trainer.args.gradient_accumulation_steps=8 \
    trainer.args.eval_strategy=steps \
    +trainer.args.eval_steps=100 \
    trainer.args.save_strategy=steps \
    +trainer.args.save_steps=100
"""

GUIDE_2_STEP_1 = r"""
CUDA_VISIBLE_DEVICES=4 python src/train.py \
    --config-name=train.yaml \
    experiment=finetune/tofu/default \
    model=Llama-3.2-1B-Instruct \
    task_name=tofu_Llama-3.2-1B-Instruct_full
"""

GUIDE_2_STEP_2 = r"""
HYDRA_FULL_ERROR=1 python src/train.py \
    --config-name=unlearn.yaml \
    experiment=unlearn/tofu/default \
    trainer=SimNPO \
    forget_split=forget10 \
    retain_split=retain90 \
    task_name=tofu_SimNPO_forget10_v1 \
    model.model_args.pretrained_model_name_or_path=open-unlearning/tofu_Llama-3.2-1B-Instruct_full \
    trainer.args.learning_rate=5e-5 \
    trainer.args.num_train_epochs=20 \
    trainer.args.per_device_train_batch_size=2 \
    trainer.args.gradient_accumulation_steps=8 \
    trainer.args.eval_strategy=steps \
    +trainer.args.eval_steps=100 \
    trainer.args.save_strategy=steps \
    +trainer.args.save_steps=100 \
    trainer.args.logging_steps=10
"""

GUIDE_6_LOOP_TRAIN = r"""
    CUDA_VISIBLE_DEVICES=4 python src/train.py \
        --config-name=unlearn.yaml \
        experiment=unlearn/tofu/default \
        trainer=${method} \
        forget_split=forget10 \
        retain_split=retain90 \
        task_name=tofu_${method}_forget10 \
        trainer.args.learning_rate=5e-5 \
        trainer.args.num_train_epochs=20
"""

# §5's adjustments, each added to the §2 step-2 command.
GUIDE_5_STRONGER = (
    "trainer.method_args.gamma=0.5 trainer.method_args.beta=10.0 trainer.args.num_train_epochs=30"
)
GUIDE_5_UTILITY = "trainer.method_args.alpha=2.0 trainer.method_args.gamma=0.05 trainer.method_args.retain_loss_type=KL"
GUIDE_5_MEMORY = (
    "trainer.args.per_device_train_batch_size=1 trainer.args.gradient_accumulation_steps=16 "
    "trainer.args.gradient_checkpointing=true"
)
GUIDE_7_LOGGING = "+trainer.args.logging_steps=1"


def parse_command(cmd: str) -> tuple[str, list[str]]:
    """A guide command line -> (config name, Hydra overrides), as the shell would split it."""
    tokens = shlex.split(cmd.replace("\\\n", " "))
    while "=" in tokens[0] and tokens[0].split("=")[0].isupper():  # VAR=value prefixes
        tokens.pop(0)
    assert tokens[:2] == ["python", "src/train.py"], tokens[:2]
    config_name = "unlearn.yaml"
    overrides = []
    for tok in tokens[2:]:
        if tok.startswith("--config-name="):
            config_name = tok.split("=", 1)[1]
        else:
            overrides.append(tok)
    return config_name, overrides


def compose_command(cmd: str, *extra: str):
    name, overrides = parse_command(cmd)
    for more in extra:
        overrides += shlex.split(more)
    return compose_config(overrides, config_name=name)


def preflight(cfg, n_train: int):
    """run_training's own pre-flight checks (no data or weights), for ``n_train`` rows."""
    plan = T.preflight(cfg, n_train=n_train)
    return plan.method_cls, plan.method_args, plan.training_args


def test_parse_command_keeps_every_override():
    name, overrides = parse_command(GUIDE_1_METHOD_2)
    assert name == "unlearn.yaml" and len(overrides) == 14
    assert (
        overrides[0] == "experiment=unlearn/tofu/default"
        and overrides[-1] == "+trainer.args.save_steps=100"
    )


def test_guide_quick_start_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_1_METHOD_2)
    assert cfg.model.model_args.pretrained_model_name_or_path == START_MODEL
    assert cfg.model.model_args.attn_implementation == "eager"
    assert cfg.paths.output_dir == "saves/unlearn/tofu_SimNPO_forget10_v1"
    cls, margs, targs = preflight(cfg, n_train=400)
    assert cls.__name__ == "SimNPO"
    assert (margs.beta, margs.gamma, margs.alpha, margs.delta) == (4.5, 0.125, 1.0, 0.0)
    assert targs.learning_rate == 5e-5
    assert targs.num_train_epochs == 20
    assert (targs.per_device_train_batch_size, targs.gradient_accumulation_steps) == (2, 8)
    assert str(targs.eval_strategy.value) == "steps" and targs.eval_steps == 100
    assert str(targs.save_strategy.value) == "steps" and targs.save_steps == 100
    assert targs.logging_steps == 10  # the default when logging_steps is not given
    assert targs.warmup_steps == 25  # 1 epoch of 400 items at 2 x 8: ceil(400 / 16)
    assert targs.output_dir == "saves/unlearn/tofu_SimNPO_forget10_v1"


def test_guide_finetune_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_2_STEP_1)
    assert cfg.mode == "finetune" and cfg.train_split == "full"
    assert cfg.model.model_args.pretrained_model_name_or_path == "meta-llama/Llama-3.2-1B-Instruct"
    assert cfg.paths.output_dir == "saves/finetune/tofu_Llama-3.2-1B-Instruct_full"
    cls, _, targs = preflight(cfg, n_train=4000)
    assert cls.__name__ == "Finetune"
    assert (targs.learning_rate, targs.num_train_epochs) == (1e-5, 5)
    assert (targs.per_device_train_batch_size, targs.gradient_accumulation_steps) == (4, 4)
    assert targs.warmup_steps == 250  # ceil(4000 / 16)


def test_guide_simnpo_unlearning_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_2_STEP_2)
    assert cfg.model.model_args.pretrained_model_name_or_path == START_MODEL
    assert cfg.trainer.method_args.beta == 4.5
    cls, margs, targs = preflight(cfg, n_train=400)
    assert cls.__name__ == "SimNPO" and margs.retain_loss_type == "NLL"
    assert targs.learning_rate == 5e-5 and targs.num_train_epochs == 20
    assert targs.eval_steps == 100 and targs.save_steps == 100
    assert targs.logging_steps == 10
    assert targs.warmup_steps == 25


def test_guide_stronger_forgetting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_2_STEP_2, GUIDE_5_STRONGER)
    _, margs, targs = preflight(cfg, n_train=400)
    assert (margs.gamma, margs.beta) == (0.5, 10.0)
    assert targs.num_train_epochs == 30


def test_guide_better_utility(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_2_STEP_2, GUIDE_5_UTILITY)
    _, margs, _ = preflight(cfg, n_train=400)
    assert (margs.alpha, margs.gamma, margs.retain_loss_type) == (2.0, 0.05, "KL")
    assert margs.beta == 4.5  # untouched


def test_guide_less_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_2_STEP_2, GUIDE_5_MEMORY)
    _, _, targs = preflight(cfg, n_train=400)
    assert (targs.per_device_train_batch_size, targs.gradient_accumulation_steps) == (1, 16)
    assert cfg.trainer.args.gradient_checkpointing is True
    assert targs.warmup_steps == 25  # still an effective batch of 16: ceil(400 / 16)


@pytest.mark.parametrize("method", ["SimNPO", "GradAscent", "GradDiff", "NPO"])
def test_guide_method_comparison_loop(method, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_6_LOOP_TRAIN.replace("${method}", method))
    assert cfg.task_name == f"tofu_{method}_forget10"
    assert cfg.paths.output_dir == f"saves/unlearn/tofu_{method}_forget10"
    cls, _, targs = preflight(cfg, n_train=400)
    assert cls.__name__ == method
    assert targs.learning_rate == 5e-5 and targs.num_train_epochs == 20


def test_guide_troubleshooting_logging_every_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = compose_command(GUIDE_1_METHOD_2, GUIDE_7_LOGGING)
    assert cfg.trainer.args.logging_steps == 1
    _, _, targs = preflight(cfg, n_train=400)
    assert targs.logging_steps == 1


def test_guide_troubleshooting_local_model_path():
    cfg = compose_command(
        GUIDE_2_STEP_2, "model.model_args.pretrained_model_name_or_path=/path/to/your/model"
    )
    path = cfg.model.model_args.pretrained_model_name_or_path
    assert path == "/path/to/your/model"
    with pytest.raises(ConfigError, match="does not exist"):
        check_model_path(path)


# ---- trainer.args validation ----------------------------------------------------------------


def guide_cfg(*extra: str):
    return compose_command(GUIDE_1_METHOD_2, *extra)


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
