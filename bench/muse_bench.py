"""obliviate benchmark, MUSE part: the MUSE evaluation's three passes (knowmem generation,
verbmem generation + extraction-strength scoring, min-k% scoring) on the model bench.py builds
(Llama-3.2-1B architecture in bf16 on a GPU, a small Llama on CPU; random weights, so every
generation runs to its token limit: the worst case). Prints one JSON line.

    python bench/muse_bench.py                                  # built-in MUSE-shaped corpus
    python bench/muse_bench.py --muse ../shared/muse_news --max-items 100   # a local MUSE copy
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from bench import build_model, peak_memory_gib

from obliviate.eval import muse_eval as ME
from obliviate.eval.muse_suite import EVAL_SPLITS
from obliviate.models.tiny import build_tiny_tokenizer
from obliviate.utils.receipt import package_versions


def load(muse: str, builtin_articles: int) -> dict[str, list]:
    from obliviate.data.builtin_muse import BuiltinMuseOptions
    from obliviate.data.muse import MuseData

    opts = BuiltinMuseOptions(
        forget=builtin_articles, retain=builtin_articles, holdout=builtin_articles
    )
    data = MuseData(muse, "News", opts)
    return {key: data.load(*where) for key, where in EVAL_SPLITS.items()}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--muse", default="builtin", help="builtin, hub or a folder of <config>/<split>.jsonl"
    )
    ap.add_argument("--articles", type=int, default=16, help="builtin: articles per group")
    ap.add_argument("--max-items", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None, help="scoring (default 16 GPU, 4 CPU)")
    ap.add_argument(
        "--generation-batch-size", type=int, default=None, help="default 128 GPU, 32 CPU"
    )
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    tokenizer = build_tiny_tokenizer()  # the real Llama-3 vocabulary, BOS <|begin_of_text|>
    tokenizer.pad_token = "<|reserved_special_token_2|>"
    model = build_model(device).eval()
    settings = ME.MuseSettings(
        data_split="News",
        max_items=a.max_items,
        batch_size=a.batch_size or (16 if gpu else 4),
        generation_batch_size=a.generation_batch_size or (128 if gpu else 32),
        progress=False,
    )
    rows = ME.capped(load(a.muse, a.articles), a.max_items)
    pr = ME.TextPrompter(tokenizer)
    seconds = {}
    for name, fn in (
        ("knowmem", lambda: ME.knowmem_metrics(model, pr, rows, settings)),
        ("verbmem_and_extraction_strength", lambda: ME.verbmem_metrics(model, pr, rows["verbmem"], settings)),
        ("min_k", lambda: ME.privacy_metrics(model, pr, rows, settings, None)),
    ):  # fmt: skip
        if gpu:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if gpu:
            torch.cuda.synchronize()
        seconds[name] = round(time.perf_counter() - t0, 2)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name()
        if gpu
        else f"cpu ({torch.get_num_threads()} threads)",
        "model": "Llama-3.2-1B architecture, random init, bf16"
        if gpu
        else "small Llama (4 layers, hidden 256), fp32",
        "versions": package_versions(),
        "command": " ".join(sys.argv),
        "muse": a.muse,
        "n_per_split": {k: len(v) for k, v in rows.items()},
        "seconds": seconds,
        "total_seconds": round(sum(seconds.values()), 2),
        "settings": {
            "knowmem_max_new_tokens": settings.knowmem_max_new_tokens,
            "verbmem_max_new_tokens": settings.verbmem_max_new_tokens,
            "max_length": settings.max_length,
            "batch_size": settings.batch_size,
            "generation_batch_size": settings.generation_batch_size,
        },
        "peak_memory_gib": round(peak_memory_gib(device), 2),
        # 1-minute load average at the end: other jobs on the same cores stretch the wall times
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
