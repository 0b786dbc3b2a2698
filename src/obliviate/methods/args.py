"""Typed method arguments (``trainer.method_args``) with the papers' names, validated at start-up."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

from obliviate.errors import ConfigError

RETAIN_LOSS_TYPES = ("NLL", "KL")


@dataclass
class MethodArgs:
    """Base: no arguments. Subclasses add fields; ``validate`` checks ranges."""

    #: the retain losses this method supports (checked per method at start-up)
    retain_loss_types: ClassVar[tuple[str, ...]] = RETAIN_LOSS_TYPES

    def validate(self, method: str) -> None:
        for name in ("beta", "gamma", "alpha", "delta"):
            value = getattr(self, name, None)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise ConfigError(
                    f"trainer.method_args.{name}={value!r} for {method} must be a number"
                )
        for name in ("beta",):
            if hasattr(self, name) and not float(getattr(self, name)) > 0:
                raise ConfigError(
                    f"trainer.method_args.{name}={getattr(self, name)} for {method} must be > 0"
                )
        for name in ("gamma", "alpha"):
            if hasattr(self, name) and float(getattr(self, name)) < 0:
                raise ConfigError(
                    f"trainer.method_args.{name}={getattr(self, name)} for {method} must be >= 0"
                )
        rlt = getattr(self, "retain_loss_type", None)
        if rlt is not None and rlt not in self.retain_loss_types:
            raise ConfigError(
                f"trainer.method_args.retain_loss_type={rlt!r} for {method}; use one of {', '.join(self.retain_loss_types)}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, method: str) -> MethodArgs:
        values = dict(values or {})
        known = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigError(
                    f"unknown method argument trainer.method_args.{key} for {method}{did_you_mean}; "
                    f"{method} takes: {', '.join(known) or 'none'}"
                )
        args = cls(**values)
        args.validate(method)
        return args


@dataclass
class RetainArgs(MethodArgs):
    """gamma weighs the forget loss, alpha the retain loss: L = gamma * L_forget + alpha * R."""

    gamma: float = 1.0
    alpha: float = 1.0
    retain_loss_type: str = "NLL"
