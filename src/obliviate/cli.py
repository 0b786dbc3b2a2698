"""Command-line doors: ``src/train.py`` and ``src/eval.py`` (the guide's commands) call these."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def _guarded(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Print a user error as one line (no traceback) and exit 2."""

    def wrapper(cfg: Any) -> Any:
        logging.getLogger("obliviate").setLevel(logging.INFO)
        try:
            return fn(cfg)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def train_main(cfg: Any) -> None:
    from obliviate.training import run_training

    out = _guarded(run_training)(cfg)
    print(f"saved to {out}")


def eval_main(cfg: Any) -> None:
    from obliviate.eval.runner import run_eval

    out = _guarded(run_eval)(cfg)
    print(f"results in {out}")


def main() -> None:
    """``obliviate train|unlearn|eval [hydra overrides]``: the same as the src/*.py doors."""
    import hydra

    if len(sys.argv) < 2 or sys.argv[1] not in ("train", "unlearn", "eval"):
        print("usage: obliviate train|unlearn|eval [overrides...]", file=sys.stderr)
        sys.exit(2)
    cmd = sys.argv.pop(1)
    name = {"train": "train", "unlearn": "unlearn", "eval": "eval"}[cmd]
    task = eval_main if cmd == "eval" else train_main
    hydra.main(config_path=str(CONFIG_DIR), config_name=name, version_base="1.3")(task)()
