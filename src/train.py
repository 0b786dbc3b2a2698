"""Train or unlearn (the guide's `python src/train.py --config-name=unlearn.yaml ...`)."""

from obliviate.launch import run
from obliviate.training import run_training
from obliviate.utils.dist import launched

if __name__ == "__main__":
    out = run(run_training, default_config="unlearn")
    if launched()[0] == 0:  # once, not once per process
        print(f"saved to {out}")
