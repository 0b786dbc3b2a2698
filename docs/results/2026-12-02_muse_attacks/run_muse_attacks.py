"""Run the relearning attack under MUSE on the MUSE demo's models and copy each report here.

The models are those of ``obliviate demo --benchmark muse --out /work/scratch/demo_muse_e8
--unlearn-epochs 8`` (SmolLM2-135M-Instruct, built-in MUSE-shaped news, 4 articles per group;
its summary: muse_demo.md there). Each run is ``obliviate eval`` with the demo's own evaluation
overrides (demo/muse.py: same data and verbmem length), under bfloat16 autocast exactly as the
demo runs its evaluation stages, plus ``attack=relearn``: 10 AdamW steps (lr 1e-4) on a seeded
25% of the forget verbmem items, their text chunked as the demo's training text
(data.max_length=256). ``attack.target_eval`` is the demo's own evaluation of the target (a
plain one, all verbmem items; on the 3 items kept here it matches the target run's "before"
item for item), privleak's reference the demo's evaluation of the retain model. The target's
run came first, with 20 steps (its report says so); the 20-step runs took ~16 min each on the
shared 2-core CPU, so the others use 10. A run whose report exists is skipped.

    PYTHONPATH=src python docs/results/2026-12-02_muse_attacks/run_muse_attacks.py [model ...]
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import torch

from obliviate.demo.stages import compose
from obliviate.eval.runner import run_eval

HERE = Path(__file__).resolve().parent
DEMO = Path("/work/scratch/demo_muse_e8")
OUT = Path("/work/scratch/muse_attacks")
MODELS = {
    "target": DEMO / "target",
    "retain": DEMO / "retain",
    **{m: DEMO / "unlearn" / m for m in ("SimNPO", "GradDiff", "NPO", "GradAscent")},
}
TARGET_EVAL = DEMO / "evals" / "target" / "MUSE_EVAL.json"  # the demo's, all 4 verbmem items
RETAIN_LOG = DEMO / "evals" / "retain" / "MUSE_EVAL.json"  # the demo's: privleak's reference
# the MUSE demo's evaluation stage overrides (demo/muse.py: stage_overrides, evaluation)
DEMO_EVAL = [
    "model=SmolLM2-135M-Instruct", "seed=0", "muse_data=builtin", "builtin_muse.forget=4",
    "builtin_muse.retain=4", "builtin_muse.holdout=4", "builtin_muse.seed=0",
    "eval.muse.verbmem_max_new_tokens=32", "experiment=eval/muse/default",
]  # fmt: skip
ATTACK = [
    "attack=relearn", "attack.data=forget_sample", "attack.fraction=0.25", "attack.steps=10",
    "attack.lr=1e-4", "attack.batch_size=4", "data.max_length=256",
]  # fmt: skip


def overrides(name: str) -> list[str]:
    ov = [
        *DEMO_EVAL,
        f"model.model_args.pretrained_model_name_or_path={MODELS[name]}",
        f"retain_logs_path={RETAIN_LOG}",
        f"task_name=muse_attack_{name}",
        f"paths.output_dir={OUT / name}",
        *ATTACK,
    ]
    if name != "target":
        ov.append(f"attack.target_eval={TARGET_EVAL}")
    return ov


def run_one(name: str) -> None:
    report = OUT / name / "ATTACK_relearn.json"
    if not report.is_file():
        ov = overrides(name)
        print(f"\n== {name}: obliviate eval --config-name=eval.yaml {' '.join(ov)}", flush=True)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            run_eval(compose("eval", [*ov, "overwrite=true"]))
        print(f"== {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    shutil.copy(report, HERE / f"{name}.relearn.json")
    # the per-item results, unattacked and attacked (generations and ROUGE of every item)
    shutil.copy(OUT / name / "MUSE_EVAL.json", HERE / f"{name}.before.MUSE_EVAL.json")
    shutil.copy(
        OUT / name / "attack_relearn" / "MUSE_EVAL.json", HERE / f"{name}.after.MUSE_EVAL.json"
    )


def main(names: list[str]) -> None:
    for name in names:
        run_one(name)


if __name__ == "__main__":
    main(sys.argv[1:] or list(MODELS))
