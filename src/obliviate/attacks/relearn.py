"""Relearning attack: a few finetuning steps on a little data, then look at what came back.

Hu et al. 2024 (arXiv 2406.13356) and Lynch et al. 2024 (arXiv 2402.16835) show that unlearned
models relearn the forgotten answers after a handful of steps on a small, even unrelated,
sample. ``attack=relearn`` finetunes a COPY of the model in memory (the saved run is never
touched) for ``attack.steps`` AdamW steps of ``attack.batch_size`` items at ``attack.lr`` on
``attack.data``:

- ``forget_sample``: a seeded ``attack.fraction`` of the evaluated forget items (TOFU's QA
  pairs, or MUSE's verbmem items as text); those items are then excluded from the benchmark's
  metrics computed on them (before and after alike), so what is measured is knowledge that
  came back without being shown again;
- ``retain``: the retain split (TOFU's QA pairs, MUSE's retain articles);
- a path to a JSON-lines file of ``{"question", "answer"}`` rows (loss on the answer) or
  ``{"text"}`` rows (loss on every token): unrelated data.

:mod:`obliviate.attacks.relearn_data` loads each kind and turns it into training items.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from omegaconf import DictConfig

from obliviate.attacks.base import ModelAttack
from obliviate.attacks.relearn_data import load_relearn_data, training_items
from obliviate.data.collate import pad_batch
from obliviate.errors import ConfigError
from obliviate.logprobs import forward_logprobs


def batch_plan(n: int, steps: int, batch_size: int, seed: int) -> list[list[int]]:
    """Item indices of each step: shuffled passes over the n items, a fresh shuffle per pass
    (private generator: the same seed gives the same batches)."""
    g = torch.Generator().manual_seed(seed)
    plan: list[list[int]] = []
    pool: list[int] = []
    for _ in range(steps):
        batch: list[int] = []
        while len(batch) < min(batch_size, n):
            if not pool:
                pool = torch.randperm(n, generator=g).tolist()
            batch.append(pool.pop(0))
        plan.append(batch)
    return plan


def relearn_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean negative log-likelihood over every labelled token of the batch (the causal-LM loss
    of plain finetuning)."""
    lp, _ = forward_logprobs(model, batch)
    return -lp.token_logp.sum() / lp.mask.sum()


def finetune(
    model: torch.nn.Module,
    items: list[dict[str, list[int]]],
    plan: list[list[int]],
    lr: float,
    pad_id: int,
) -> list[float]:
    """One AdamW step (no weight decay, constant lr) per batch of ``plan``; the losses."""
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for idx in plan:
        batch = pad_batch([items[i] for i in idx], pad_id)
        loss = relearn_loss(model, {k: v.to(device) for k, v in batch.items()})
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    return losses


class RelearnAttack(ModelAttack):
    name = "relearn"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        a = cfg.attack
        self.steps = _whole("attack.steps", a.get("steps"))
        self.batch_size = _whole("attack.batch_size", a.get("batch_size"))
        self.lr = _positive("attack.lr", a.get("lr"))
        self.fraction = float(a.get("fraction") or 0)
        self.data = str(a.get("data"))
        self.source = load_relearn_data(cfg, self.data, self.fraction, self.seed)
        self.benchmark = self.source.benchmark

    def excluded_forget_indices(self) -> list[int]:
        return list(self.source.used)

    def apply(self, model: torch.nn.Module, tokenizer: Any) -> tuple[torch.nn.Module, dict]:
        items, owners, pad_id = training_items(self.source, tokenizer, self.cfg)
        plan = batch_plan(len(items), self.steps, self.batch_size, self.seed)
        losses = finetune(model, items, plan, self.lr, pad_id)
        # batches in the data's own numbering: forget item indices for forget_sample, else the
        # row (TOFU, a file) or chunk (MUSE retain) indices
        used = self.source.used
        ids = [used[k] for k in owners] if used else owners
        return model, {
            "data": self.data,
            "benchmark": self.benchmark,
            "n_rows": len(self.source.rows),
            "n_items": len(items),
            "losses": losses,
            "batches": [[ids[i] for i in b] for b in plan],
        }


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value} must be a whole number >= 1")
    return value


def _positive(key: str, value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise ConfigError(f"{key}={value} must be a number > 0")
    return float(value)
