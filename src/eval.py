"""Evaluate on TOFU (the guide's `python src/eval.py --config-name=eval.yaml ...`)."""

from obliviate.eval.runner import run_eval
from obliviate.launch import run

if __name__ == "__main__":
    out = run(run_eval, default_config="eval")
    print(f"results in {out}")
