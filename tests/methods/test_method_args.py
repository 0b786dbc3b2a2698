"""Typed method arguments: unknown names and out-of-range values are ConfigErrors at start-up."""

from __future__ import annotations

import pytest

from conftest import compose_config
from obliviate import config as C
from obliviate.errors import ConfigError
from obliviate.methods.args import MethodArgs, RetainArgs
from obliviate.methods.npo import NPOArgs
from obliviate.methods.simnpo import SimNPOArgs


def args_of(trainer: str, *overrides: str):
    cfg = compose_config(
        ["experiment=unlearn/tofu/default", f"trainer={trainer}", "task_name=t", *overrides]
    )
    return C.method_args(cfg, C.method_class(cfg))


def test_typo_in_a_method_argument_suggests_the_real_name():
    with pytest.raises(ConfigError, match=r"trainer\.method_args\.bta .*did you mean 'beta'") as e:
        args_of("SimNPO", "+trainer.method_args.bta=4.5")
    assert "SimNPO" in str(e.value)


def test_typo_rejected_for_npo_directly():
    with pytest.raises(ConfigError, match="'beta'"):
        NPOArgs.from_dict({"bta": 0.1}, "NPO")


def test_method_without_arguments_lists_none():
    with pytest.raises(ConfigError, match="GradAscent takes: none"):
        args_of("GradAscent", "+trainer.method_args.gamma=2.0")


@pytest.mark.parametrize(
    ("trainer", "override", "pattern"),
    [
        ("SimNPO", "trainer.method_args.beta=0", r"beta=0.* must be > 0"),
        ("SimNPO", "trainer.method_args.beta=-1.0", r"beta=-1.0.* must be > 0"),
        ("NPO", "trainer.method_args.beta=0.0", r"beta=0.0.* must be > 0"),
        ("SimNPO", "trainer.method_args.gamma=-0.1", r"gamma=-0.1.* must be >= 0"),
        ("GradDiff", "trainer.method_args.gamma=-1", r"gamma=-1.* must be >= 0"),
        ("SimNPO", "trainer.method_args.alpha=-2.0", r"alpha=-2.0.* must be >= 0"),
        ("NPO", "trainer.method_args.alpha=-0.5", r"alpha=-0.5.* must be >= 0"),
        ("SimNPO", "trainer.method_args.retain_loss_type=XYZ", r"retain_loss_type='XYZ'.*NLL, KL"),
        ("GradDiff", "trainer.method_args.retain_loss_type=nll", r"retain_loss_type='nll'"),
    ],
)
def test_out_of_range_values_are_rejected(trainer, override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        args_of(trainer, override)


@pytest.mark.parametrize("trainer", ["SimNPO", "NPO", "GradDiff"])
def test_boundary_values_are_accepted(trainer):
    # gamma = 0 and alpha = 0 switch a term off; they are valid.
    args = args_of(trainer, "trainer.method_args.gamma=0", "trainer.method_args.alpha=0")
    assert (args.gamma, args.alpha) == (0, 0)


def test_overrides_reach_the_typed_arguments():
    args = args_of(
        "SimNPO",
        "trainer.method_args.beta=10.0",
        "trainer.method_args.delta=0.5",
        "trainer.method_args.retain_loss_type=KL",
    )
    assert isinstance(args, SimNPOArgs)
    assert (args.beta, args.delta, args.retain_loss_type, args.gamma, args.alpha) == (
        10.0,
        0.5,
        "KL",
        0.125,
        1.0,
    )


def test_dataclass_defaults_are_the_papers():
    assert vars(SimNPOArgs()) == {
        "gamma": 0.125,
        "alpha": 1.0,
        "retain_loss_type": "NLL",
        "beta": 4.5,
        "delta": 0.0,
    }
    assert NPOArgs().beta == 0.1
    assert vars(RetainArgs()) == {"gamma": 1.0, "alpha": 1.0, "retain_loss_type": "NLL"}
    assert vars(MethodArgs()) == {}


@pytest.mark.parametrize("name", ["beta", "gamma", "alpha", "delta"])
def test_non_numeric_values_are_config_errors(name):
    # A ConfigError (printed as one line by the CLI), not a bare float() ValueError traceback.
    with pytest.raises(ConfigError, match=rf"{name}='abc' for SimNPO must be a number"):
        args_of("SimNPO", f"trainer.method_args.{name}=abc")
