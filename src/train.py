"""Train or unlearn (the guide's `python src/train.py --config-name=unlearn.yaml ...`)."""

import os

from obliviate.launch import run
from obliviate.training import run_training

if __name__ == "__main__":
    out = run(run_training, default_config="unlearn")
    if os.environ.get("RANK", "0") == "0":  # once, not once per process
        print(f"saved to {out}")
