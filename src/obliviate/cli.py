"""Command-line doors: ``src/train.py`` and ``src/eval.py`` (the guide's commands) call these."""

from __future__ import annotations

import sys


def main() -> None:
    """``obliviate train|unlearn|eval [hydra overrides]``: the same as the src/*.py doors."""
    from obliviate.launch import run

    if len(sys.argv) >= 2 and sys.argv[1] in ("demo", "compare"):  # obliviate/demo/
        from obliviate.demo.cli import main as demo_main

        sys.exit(demo_main(sys.argv[1:]))
    if len(sys.argv) < 2 or sys.argv[1] not in ("train", "unlearn", "eval"):
        print("usage: obliviate train|unlearn|eval|demo|compare [...]", file=sys.stderr)
        sys.exit(2)
    cmd = sys.argv[1]
    if cmd == "eval":
        from obliviate.eval.runner import run_eval

        print(f"results in {run(run_eval, 'eval', sys.argv[2:])}")
    else:
        from obliviate.training import run_training

        print(f"saved to {run(run_training, cmd, sys.argv[2:])}")
