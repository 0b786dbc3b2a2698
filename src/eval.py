"""Evaluate on TOFU (the guide's `python src/eval.py --config-name=eval.yaml ...`)."""

import os

from obliviate.eval.runner import run_eval
from obliviate.launch import run

if __name__ == "__main__":
    out = run(run_eval, default_config="eval")
    if os.environ.get("RANK", "0") == "0":  # once, not once per process
        print(f"results in {out}")
