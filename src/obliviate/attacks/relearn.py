"""Relearning attack: a few finetuning steps on a little data, then look at what came back.

Hu et al. 2024 (arXiv 2406.13356) and Lynch et al. 2024 (arXiv 2402.16835) show that unlearned
models relearn the forgotten answers after a handful of steps on a small, even unrelated,
sample. ``attack=relearn`` finetunes a COPY of the model in memory (the saved run is never
touched) for ``attack.steps`` AdamW steps of ``attack.batch_size`` items at ``attack.lr`` on
``attack.data``:

- ``forget_sample``: a seeded ``attack.fraction`` of the evaluated forget items; those items are
  then excluded from every reported forget-side metric (before and after alike), so what is
  measured is knowledge that came back without being shown again;
- ``retain``: the retain split's QA pairs (``retain_split``);
- a path to a JSON-lines file of ``{"question", "answer"}`` rows (loss on the answer) or
  ``{"text"}`` rows (loss on every token): unrelated data.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from obliviate.attacks.base import ModelAttack
from obliviate.data import tofu
from obliviate.data.collate import pad_batch
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.errors import ConfigError
from obliviate.logprobs import forward_logprobs

DATA_KINDS = ("forget_sample", "retain")


def sample_indices(n: int, fraction: float, seed: int) -> list[int]:
    """A seeded ``fraction`` of ``range(n)`` (at least one item), sorted."""
    k = max(1, round(fraction * n))
    return sorted(random.Random(seed).sample(range(n), k))


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
        self.used: list[int] = []  # forget items trained on (forget_sample)
        self.rows = self._load_rows(cfg)

    def _load_rows(self, cfg: DictConfig) -> list[dict[str, Any]]:
        if self.data in DATA_KINDS and "tofu" not in ((cfg.get("eval") or {}).get("suites") or {}):
            raise ConfigError(
                f"attack.data={self.data} draws from TOFU's splits, but eval=tofu is not selected; "
                "add it (eval=[tofu,...]) or pass a JSON-lines file as attack.data"
            )
        if self.data == "forget_sample":
            if not 0 < self.fraction < 1:
                raise ConfigError(
                    f"attack.fraction={self.fraction} must be in (0, 1): the share of forget items "
                    "trained on; the others are evaluated"
                )
            source = tofu.TofuSource.from_config(cfg)
            forget = source.load(f"{cfg.forget_split}_perturbed")
            cap = (cfg.get("eval") or {}).get("max_items")
            forget = forget[:cap] if cap else forget
            self.used = sample_indices(len(forget), self.fraction, self.seed)
            if len(self.used) >= len(forget):
                raise ConfigError(
                    f"attack.fraction={self.fraction} of {len(forget)} forget items leaves none to "
                    "evaluate; lower it or evaluate more items (eval.max_items)"
                )
            return [forget[i] for i in self.used]
        if self.data == "retain":
            return tofu.TofuSource.from_config(cfg).load(str(cfg.retain_split))
        return read_rows(self.data)

    def excluded_forget_indices(self) -> list[int]:
        return list(self.used)

    def apply(self, model: torch.nn.Module, tokenizer: Any) -> tuple[torch.nn.Module, dict]:
        fmt = ChatFormat.from_config(self.cfg.model.template)
        encoder = QAEncoder(prepare_tokenizer(tokenizer, fmt), fmt, int(self.cfg.data.max_length))
        items = [encode_row(encoder, r) for r in self.rows]
        plan = batch_plan(len(items), self.steps, self.batch_size, self.seed)
        losses = finetune(model, items, plan, self.lr, encoder.tokenizer.pad_token_id)
        # batches in the data's own numbering: forget item indices for forget_sample
        ids = self.used if self.used else list(range(len(items)))
        return model, {
            "data": self.data,
            "n_rows": len(items),
            "losses": losses,
            "batches": [[ids[i] for i in b] for b in plan],
        }


def encode_row(encoder: QAEncoder, row: dict[str, Any]) -> dict[str, list[int]]:
    """A QA row: the answer is the target; a text row: every token is."""
    if "question" in row:
        return encoder.encode(row["question"], row["answer"])
    ids = encoder.tokenizer(row["text"], add_special_tokens=False)["input_ids"][
        : encoder.max_length
    ]
    return {"input_ids": ids, "labels": list(ids)}


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines (or JSON list) file of QA pairs or texts, checked."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(
            f"attack.data={path!r} is neither {' nor '.join(DATA_KINDS)} nor a file; pass a JSON-lines "
            'file of {"question", "answer"} or {"text"} rows'
        )
    text = p.read_text(encoding="utf-8").strip()
    try:
        rows = (
            json.loads(text)
            if text.startswith("[")
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"attack.data={path!r} is not JSON lines ({e.msg}, line {e.lineno})"
        ) from e
    for i, r in enumerate(rows):
        ok = isinstance(r, dict) and (
            ("question" in r and "answer" in r) or isinstance(r.get("text"), str)
        )
        if not ok:
            raise ConfigError(
                f"attack.data={path!r} row {i} has neither question+answer nor text; fix the file"
            )
    if not rows:
        raise ConfigError(f"attack.data={path!r} is empty")
    return rows


def _whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value} must be a whole number >= 1")
    return value


def _positive(key: str, value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise ConfigError(f"{key}={value} must be a number > 0")
    return float(value)
