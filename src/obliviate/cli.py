"""The ``obliviate`` command, for an installed package (no repository needed).

``obliviate train ...`` takes exactly the arguments of ``python src/train.py ...`` and
``obliviate eval ...`` those of ``python src/eval.py ...``: the same ``--config-name`` (with the
same default) and the same Hydra overrides, run by the same launcher. ``obliviate unlearn`` is a
shorthand for ``obliviate train``; ``demo`` and ``compare`` are :mod:`obliviate.demo.cli`.
"""

from __future__ import annotations

import sys

USAGE = """usage: obliviate COMMAND [ARGS]

  train   [--config-name=unlearn.yaml] key=value ...   as `python src/train.py` (unlearn or finetune;
                                                       -m: a sweep, docs/sweeps.md)
  unlearn [--config-name=unlearn.yaml] key=value ...   the same as train
  eval    [--config-name=eval.yaml] key=value ...      as `python src/eval.py`
  demo    [options]                                    the whole experiment on CPU (--help)
  compare [options]                                    a table and plot from evaluations (--help)
  configs                                              print the folder of the shipped configs"""

# The config each door composes when no --config-name is given: src/train.py's and src/eval.py's.
DEFAULT_CONFIG = {"train": "unlearn", "unlearn": "unlearn", "eval": "eval"}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    cmd, args = (argv[0], argv[1:]) if argv else ("", [])
    if cmd in ("demo", "compare"):
        from obliviate.demo.cli import main as demo_main

        sys.exit(demo_main(argv))
    if cmd == "configs":  # e.g. accelerate launch --config_file "$(obliviate configs)/accelerate/..."
        from obliviate.config import CONFIG_DIR

        print(CONFIG_DIR)
        return
    if cmd in ("-h", "--help"):
        print(USAGE)
        return
    if cmd not in DEFAULT_CONFIG:
        known = ", ".join([*DEFAULT_CONFIG, "demo", "compare", "configs"])
        print(f"error: unknown command {cmd!r}; use one of {known} (obliviate --help)", file=sys.stderr)
        sys.exit(2)
    from obliviate.launch import run

    if cmd == "eval":
        from obliviate.eval.runner import run_eval as job

        done = "results in"
    else:
        from obliviate.training import run_training as job

        done = "saved to"
    out = run(job, DEFAULT_CONFIG[cmd], args)
    from obliviate.utils.dist import launched

    if launched()[0] == 0:  # once, not once per process (as src/train.py)
        print(f"{done} {out}")
