"""The baseline methods' typed arguments: the papers' defaults, per-method retain-loss types,
and start-up errors that name the bad value."""

from __future__ import annotations

import pytest

from conftest import compose_config
from obliviate import config as C
from obliviate.errors import ConfigError
from obliviate.methods.rmu import default_trainable_pattern, resolve_layer

GRADDIFF_STYLE = ["IdkDPO", "WGA", "SatImp", "UNDIAL", "CEU", "GradDiff", "NPO", "SimNPO"]


def args_of(trainer: str, *overrides: str):
    cfg = compose_config(
        ["experiment=unlearn/tofu/default", f"trainer={trainer}", "task_name=t", *overrides]
    )
    return C.method_args(cfg, C.method_class(cfg))


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        ("IdkDPO", dict(beta=0.1, gamma=1.0, alpha=1.0, retain_loss_type="NLL", idk_path=None)),
        ("WGA", dict(beta=1.0, gamma=1.0, alpha=1.0, retain_loss_type="NLL")),
        ("SatImp", dict(beta1=5.0, beta2=1.0, gamma=0.1, alpha=1.0, retain_loss_type="NLL")),
        ("UNDIAL", dict(beta=10.0, gamma=1.0, alpha=0.0, retain_loss_type="NLL")),
        ("CEU", dict(ignore_first_n_answer_tokens=1, gamma=1.0, alpha=0.0, retain_loss_type="NLL")),
        (
            "RMU",
            dict(
                layer=None,
                steering_coeff=6.5,
                gamma=1.0,
                alpha=1200.0,
                trainable_params=None,
                seed=0,
            ),
        ),
    ],
)
def test_paper_defaults(trainer, expected):
    assert vars(args_of(trainer)) == expected


@pytest.mark.parametrize("trainer", GRADDIFF_STYLE)
def test_every_graddiff_style_method_takes_a_kl_retain_loss(trainer):
    assert args_of(trainer, "trainer.method_args.retain_loss_type=KL").retain_loss_type == "KL"
    with pytest.raises(
        ConfigError, match=rf"retain_loss_type='MSE' for {trainer}; use one of NLL, KL"
    ):
        args_of(trainer, "trainer.method_args.retain_loss_type=MSE")


def test_rmu_has_no_retain_loss_type():
    with pytest.raises(ConfigError, match="unknown method argument .*retain_loss_type for RMU"):
        args_of("RMU", "+trainer.method_args.retain_loss_type=KL")


@pytest.mark.parametrize(
    ("trainer", "override", "pattern"),
    [
        ("IdkDPO", "trainer.method_args.beta=0", r"beta=0 for IdkDPO must be > 0"),
        (
            "IdkDPO",
            "trainer.method_args.idk_path=/no/such/file.txt",
            r"idk_path='/no/such/file.txt'",
        ),
        ("SatImp", "trainer.method_args.beta1=-1", r"beta1=-1 for SatImp must be a number >= 0"),
        ("UNDIAL", "trainer.method_args.beta=-3", r"beta=-3 for UNDIAL must be > 0"),
        (
            "CEU",
            "trainer.method_args.ignore_first_n_answer_tokens=-1",
            r"ignore_first_n_answer_tokens=-1",
        ),
        ("RMU", "trainer.method_args.steering_coeff=0", r"steering_coeff=0 for RMU must be > 0"),
        ("RMU", "trainer.method_args.layer=-2", r"layer=-2 for RMU"),
        (
            "RMU",
            "trainer.method_args.trainable_params='('",
            r"trainable_params='\(' is not a regular",
        ),
        ("RMU", "trainer.method_args.alpha=-1", r"alpha=-1 for RMU must be >= 0"),
    ],
)
def test_bad_values_name_themselves(trainer, override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        args_of(trainer, override)


def test_rmu_layer_rule():
    assert resolve_layer(None, 32) == 7  # the paper's layer
    assert resolve_layer(None, 16) == 7  # Llama-3.2-1B
    assert resolve_layer(None, 2) == 1  # the tiny model: its middle
    assert resolve_layer(3, 4) == 3
    with pytest.raises(ConfigError, match="layer=4 but the model has 4 layers"):
        resolve_layer(4, 4)
    assert default_trainable_pattern(7) == r"layers\.(5|6|7)\.mlp\.down_proj\."
    assert default_trainable_pattern(1) == r"layers\.(0|1)\.mlp\.down_proj\."
