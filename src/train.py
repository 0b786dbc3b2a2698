"""Train or unlearn (the guide's `python src/train.py --config-name=unlearn.yaml ...`)."""

from obliviate.launch import run
from obliviate.training import run_training

if __name__ == "__main__":
    out = run(run_training, default_config="unlearn")
    print(f"saved to {out}")
