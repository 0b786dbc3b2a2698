"""Run the relearning and 4-bit quantization attacks (torchao int4 as run ``quantize``,
bitsandbytes NF4 as run ``nf4``) on the demo's models (``obliviate demo``, default settings:
saves/demo/) and copy each ATTACK_<name>.json here as <model>.<run>.json.

Each run is ``obliviate eval`` with the demo's own evaluation overrides (same data, items,
answer length, batch sizes, retain log) plus ``attack=...``, run through ``run_eval`` under
bfloat16 autocast exactly as the demo runs its evaluation stages. The target's unattacked
evaluation (the "before" of its own quantization run) is the other runs' ``attack.target_eval``.
A run whose ATTACK file exists is skipped; a model not yet trained is waited for. Runs that
started before the retain model's log existed have no forget_quality in their report;
make_table.py computes it from the report's per-item forget truth ratios.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice python docs/results/2026-12-02_attacks/run_attacks.py
    ... run_attacks.py target:nf4 retain:nf4 SimNPO:nf4   # chosen models and runs only
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import torch

from obliviate.attacks.base import forget_truth_ratios
from obliviate.demo.stages import compose
from obliviate.eval.runner import run_eval
from obliviate.utils.io import atomic_write_json

HERE = Path(__file__).resolve().parent
DEMO = Path("saves/demo")
OUT = Path("saves/attacks")
MODELS = {
    "target": DEMO / "target",
    "retain": DEMO / "retain",
    **{m: DEMO / "unlearn" / m for m in ("SimNPO", "NPO", "GradDiff", "GradAscent")},
}
RETAIN_LOG = DEMO / "evals" / "retain" / "TOFU_EVAL.json"
ATTACKS = {
    "quantize": ["attack=quantize", "attack.bits=4"],
    "nf4": ["attack=quantize", "attack.library=bitsandbytes", "attack.bits=4"],
    "relearn": ["attack=relearn", "attack.data=forget_sample", "attack.fraction=0.25",
                "attack.steps=20"],
}  # fmt: skip
#: the attack each run is (its ATTACK_<name>.json), where the run's key is not the name
ATTACK_NAME = {"nf4": "quantize"}
#: runs that evaluate the target unattacked first: their "before" is the recovery reference
WEIGHT_ONLY = ("quantize", "nf4")
# The demo's evaluation stage overrides (demo/pipeline.py StageOverrides.evaluate, defaults)
DEMO_EVAL = [
    "model=SmolLM2-135M-Instruct", "seed=0", "tofu_data=builtin", "builtin_data.authors=5",
    "builtin_data.seed=0", "experiment=eval/tofu/default", "forget_split=forget40",
    "holdout_split=null", "eval.max_items=null", "eval.utility_items=8",
    "eval.max_new_tokens=32", "eval.batch_size=32", "eval.generation_batch_size=64",
]  # fmt: skip


def target_eval(attack: str) -> Path:
    """The target's unattacked evaluation: the "before" of its own run of a weight attack
    (relearning evaluates fewer items and uses the torchao run's)."""
    run = attack if attack in WEIGHT_ONLY else "quantize"
    return OUT / "target" / run / "TOFU_EVAL.json"


def ready(path: Path) -> bool:
    return (path / "model.safetensors").is_file() and (path / "demo_stage.json").is_file()


def overrides(name: str, attack: str) -> list[str]:
    out = OUT / name / attack
    ov = [
        *DEMO_EVAL,
        f"model.model_args.pretrained_model_name_or_path={MODELS[name]}",
        # a run may start before the retain model's log exists: forget_quality is then null
        # in its report, and make_table.py computes it from the per-item truth ratios
        f"retain_logs_path={RETAIN_LOG if RETAIN_LOG.is_file() else 'null'}",
        f"task_name=attack_{name}_{attack}",
        f"paths.output_dir={out}",
        *ATTACKS[attack],
    ]
    if not (name == "target" and attack in WEIGHT_ONLY):
        ov.append(f"attack.target_eval={target_eval(attack)}")
    return ov


def run_one(name: str, attack: str) -> None:
    out = OUT / name / attack
    kind = ATTACK_NAME.get(attack, attack)
    report = out / f"ATTACK_{kind}.json"
    if not report.is_file():
        while (
            not (name == "target" and attack in WEIGHT_ONLY) and not target_eval(attack).is_file()
        ):
            time.sleep(30)  # the target's unattacked evaluation comes first
        ov = overrides(name, attack)
        print(f"\n== {name} / {attack}: obliviate eval --config-name=eval.yaml {' '.join(ov)}")
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            run_eval(compose("eval", [*ov, "overwrite=true"]))
        print(f"== {name} / {attack} done in {time.perf_counter() - t0:.0f} s", flush=True)
    shutil.copy(report, HERE / f"{name}.{attack}.json")
    # per-item forget truth ratios, unattacked and attacked: forget_quality for make_table.py
    ratios = {
        "before": forget_truth_ratios(out),
        "after": forget_truth_ratios(out / f"attack_{kind}"),
    }
    atomic_write_json(HERE / f"{name}.{attack}.truth_ratios.json", ratios)


def copy_retain_log() -> None:
    """The retain model's per-item forget truth ratios (forget_quality's reference)."""
    if RETAIN_LOG.is_file():
        atomic_write_json(
            HERE / "retain_log.truth_ratios.json", forget_truth_ratios(RETAIN_LOG.parent)
        )


def main(items: list[str]) -> None:
    """Each item is a model (every attack) or model:attack."""
    for item in items:
        name, _, only = item.partition(":")
        while not ready(MODELS[name]):
            time.sleep(30)
        for attack in [only] if only else ["quantize", "relearn", "nf4"]:
            run_one(name, attack)
            copy_retain_log()


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))
