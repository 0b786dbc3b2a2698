"""What a training run cost: wall time, seconds per step, tokens per second, peak memory and
an estimate of its floating-point operations, for the run's receipt.

Tokens are counted where they enter the model: a forward pre-hook on the model adds up the
``attention_mask`` of every call (the real, unpadded tokens). A call with gradients on is a
training pass (forward + backward); a call without gradients is a forward only -- the
reference log-probs NPO-style methods compute before training, a frozen reference copy's
passes (KL retain loss, RMU; the copy inherits the hook), LoRA's adapters-off reference passes,
and evaluation during training if it is on.

FLOPs follow the usual dense-transformer estimate (Kaplan et al. 2020, "Scaling Laws for
Neural Language Models"): ``6 * N * tokens`` for training passes and ``2 * N * tokens`` for
forward-only passes, where N is the parameter count without the input embedding table (a
look-up, not a matrix product; a tied output head is counted once). The estimate leaves out
attention's context-length term and gradient checkpointing's recomputation, and treats a LoRA
run as if every weight got its gradient, so it is an upper bound there.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import torch
from transformers import TrainerCallback


def flops_estimate(n_params: int, train_tokens: int, forward_tokens: int) -> float:
    """``6 N T_train + 2 N T_forward`` (see the module docstring)."""
    return 6.0 * n_params * train_tokens + 2.0 * n_params * forward_tokens


def matmul_params(model: torch.nn.Module) -> int:
    """Parameters that take part in matrix products: all but the input embedding table
    (unless that table is also the output head). ZeRO-3 shards report their full size."""
    total = sum(int(getattr(p, "ds_numel", p.numel())) for p in model.parameters())
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if emb is None or (head is not None and head.weight is emb.weight):
        return total
    return total - int(getattr(emb.weight, "ds_numel", emb.weight.numel()))


def peak_memory() -> dict[str, Any]:
    """CUDA: the most memory tensors held since the last reset; CPU: the process's peak RSS."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        mib = torch.cuda.max_memory_allocated() / 2**20
        return {"peak_memory_mib": mib, "memory_kind": "cuda_max_allocated"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    mib = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
    return {"peak_memory_mib": mib, "memory_kind": "cpu_peak_rss"}


class EfficiencyMeter(TrainerCallback):
    """Counts tokens from the moment it is attached to a model; times ``trainer.train()``."""

    def __init__(self) -> None:
        self.train_tokens = 0  # through passes with gradients (forward + backward)
        self.forward_tokens = 0  # through forward-only passes
        self.n_params = 0
        self.start: float | None = None
        self.seconds = 0.0
        self.first_step = 0
        self.steps = 0
        self.created = time.perf_counter()

    def attach(self, model: torch.nn.Module) -> EfficiencyMeter:
        self.n_params = matmul_params(model)

        # A plain closure, not a bound method: a deepcopy of the model (the frozen reference
        # copy) then keeps counting into this meter instead of into a copy of it.
        def count(module: Any, args: tuple, kwargs: dict) -> None:
            mask = kwargs.get("attention_mask")
            ids = kwargs.get("input_ids", args[0] if args else None)
            n = int(mask.sum()) if mask is not None else (ids.numel() if ids is not None else 0)
            if torch.is_grad_enabled():
                self.train_tokens += n
            else:
                self.forward_tokens += n

        model.register_forward_pre_hook(count, with_kwargs=True)
        return self

    def on_train_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()
        self.first_step = state.global_step  # > 0 when resumed from a checkpoint
        self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        if self.start is not None:
            self.seconds = time.perf_counter() - self.start
        self.steps = state.global_step - self.first_step

    def summary(self) -> dict[str, Any]:
        """The receipt's ``efficiency`` block (this process's share under a launcher)."""
        per_step = self.seconds / self.steps if self.steps else None
        return {
            # from the meter's creation (after the checks) to now: data, model, training, saving
            "wall_seconds": round(time.perf_counter() - self.created, 3),
            "train_seconds": round(self.seconds, 3),  # trainer.train() alone
            "steps": self.steps,
            "seconds_per_step": round(per_step, 4) if per_step else None,
            "train_tokens": self.train_tokens,
            "forward_only_tokens": self.forward_tokens,
            # training tokens per second of trainer.train()
            "tokens_per_second": round(self.train_tokens / self.seconds, 2)
            if self.seconds
            else None,
            **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in peak_memory().items()},
            "params_counted": self.n_params,
            "train_flops_estimate": flops_estimate(
                self.n_params, self.train_tokens, self.forward_tokens
            ),
            "flops_formula": "6*N*train_tokens + 2*N*forward_only_tokens, N = params without the input embedding",
        }
