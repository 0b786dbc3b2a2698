"""Evaluate on TOFU (the guide's `python src/eval.py --config-name=eval.yaml ...`)."""

from obliviate.eval.runner import run_eval
from obliviate.launch import run
from obliviate.utils.dist import launched

if __name__ == "__main__":
    out = run(run_eval, default_config="eval")
    if launched()[0] == 0:  # once, not once per process
        print(f"results in {out}")
