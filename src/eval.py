"""Evaluate on TOFU (the guide's `python src/eval.py --config-name=eval.yaml ...`)."""

from pathlib import Path

import hydra

from obliviate.cli import eval_main

# Absolute, so the configs are found whatever the working directory.
CONFIGS = Path(__file__).resolve().parent.parent / "configs"

if __name__ == "__main__":
    hydra.main(config_path=str(CONFIGS), config_name="eval", version_base="1.3")(eval_main)()
