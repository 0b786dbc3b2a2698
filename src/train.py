"""Train or unlearn (the guide's `python src/train.py --config-name=unlearn.yaml ...`)."""

from pathlib import Path

import hydra

from obliviate.cli import train_main

# Absolute, so the configs are found whatever the working directory.
CONFIGS = Path(__file__).resolve().parent.parent / "configs"

if __name__ == "__main__":
    hydra.main(config_path=str(CONFIGS), config_name="unlearn", version_base="1.3")(train_main)()
