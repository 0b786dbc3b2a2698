"""The one per-sequence log-probability helper, shared by every loss and every TOFU metric.

Causal-LM convention: the logit at position t predicts token t+1, so logits are shifted left
and labels right by one. Positions whose label is -100 (prompt, padding) carry no probability.

``forward_logprobs`` runs the model and applies the LM head only from the first position that
predicts a labelled token on (``logits_to_keep``): with Llama-3's 128k vocabulary the prompt's
logits are most of a TOFU forward pass's memory and time, and they are never used.

``score_encoded`` is the batched teacher-forced scoring loop over many items: the evaluation
scores answers with it and the NPO-style methods their reference log-probs, so it lives here,
below both (methods do not import the evaluation).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
import torch.nn.functional as F

from obliviate.data.collate import pad_batch
from obliviate.data.formatting import IGNORE_INDEX


@dataclass
class SequenceLogProbs:
    """Token and sequence log-probabilities of the labelled (answer) tokens of a batch."""

    token_logp: torch.Tensor  # (B, T-1) log p(label_t | prefix); 0 where mask is False
    mask: torch.Tensor  # (B, T-1) True on answer tokens
    targets: torch.Tensor  # (B, T-1) the label ids (IGNORE_INDEX where masked)

    def __getitem__(self, rows: slice) -> SequenceLogProbs:
        """The statistics of a subset of the batch's rows."""
        return SequenceLogProbs(self.token_logp[rows], self.mask[rows], self.targets[rows])

    @property
    def sum(self) -> torch.Tensor:
        """(B,) log p(answer | prompt): summed over answer tokens."""
        return self.token_logp.sum(-1)

    @property
    def count(self) -> torch.Tensor:
        """(B,) number of answer tokens T."""
        return self.mask.sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        """(B,) (1/T) log p(answer | prompt) = -avg_loss. NaN for an item with no answer tokens."""
        return self.sum / self.count.to(self.token_logp.dtype)


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> SequenceLogProbs:
    """Per-token log-probs of ``labels`` under ``logits`` (B, T, V), in float32."""
    logits = logits[:, :-1, :]  # (B, T-1, V)
    targets = labels[:, 1:]  # (B, T-1)
    mask = targets != IGNORE_INDEX
    # cross_entropy on float32 gives -log_softmax at the target without materialising a second
    # (B, T, V) tensor of log-probs; ignore_index positions come back as 0.
    nll = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(targets.shape)
    return SequenceLogProbs(token_logp=-nll, mask=mask, targets=targets)


def vocab_dim_1_mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) mean NLL of the labelled tokens, -``sequence_logprobs(...).mean``, computed as
    open-unlearning's ``evaluate_probability`` does: cross-entropy over the logits laid out
    (B, V, T-1), the vocabulary on dim 1. Same formula; but PyTorch's CPU float32 log-softmax
    over a non-last dimension sums the V exponentials in another order: with SmolLM2's 49k
    vocabulary its normaliser is off by 8.7e-5 nats per token on average against float64 (the
    last-dimension kernel: 6.3e-6; docs/results/2026-12-02_parity/smollm2_nll_layout.json)."""
    targets = labels[:, 1:]  # (B, T-1)
    nll = F.cross_entropy(
        logits[:, :-1, :].float().transpose(1, 2),  # (B, V, T-1)
        targets,
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )  # (B, T-1), 0 where ignored
    return nll.sum(-1) / (targets != IGNORE_INDEX).sum(-1)


def answer_window(labels: torch.Tensor) -> int:
    """First position whose logit predicts a labelled token in any row: (first label) - 1."""
    has = labels != IGNORE_INDEX  # (B, T)
    if not bool(has.any()):
        return max(labels.size(1) - 1, 0)
    first = torch.where(has.any(-1), has.float().argmax(-1), labels.size(1))  # (B,)
    return max(int(first.min()) - 1, 0)


@cache
def _accepts_logits_to_keep(cls: type) -> bool:
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def forward_logits(
    model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int
) -> torch.Tensor:
    """Logits at positions ``start .. T-1`` only: (B, T - start, V)."""
    keep = input_ids.size(1) - start
    inner = getattr(model, "module", model)  # DDP / DeepSpeed wrappers forward kwargs unchanged
    if hasattr(inner, "get_base_model"):  # PEFT wrappers pass extra kwargs on to the base model
        inner = inner.get_base_model()
    if _accepts_logits_to_keep(type(inner)):
        return model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=keep).logits
    return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, start:]


def forward_logprobs(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[SequenceLogProbs, torch.Tensor]:
    """One forward pass; the log-probs of ``batch["labels"]`` and the kept logits (B, T', V)."""
    start = answer_window(batch["labels"])
    logits = forward_logits(model, batch["input_ids"], batch["attention_mask"], start)
    return sequence_logprobs(logits, batch["labels"][:, start:]), logits


@dataclass
class ScoredAnswer:
    """Teacher-forced statistics of one answer (its T answer tokens incl. the end-of-turn)."""

    avg_loss: float  # -(1/T) sum_t log p(a_t | q, a_<t); nan if T == 0
    sum_logp: float  # sum_t log p(a_t | q, a_<t)
    token_logp: torch.Tensor  # (T,) float32, on CPU
    pred_ids: torch.Tensor  # (T,) argmax prediction at each answer position
    label_ids: torch.Tensor  # (T,) the answer tokens


@torch.no_grad()
def score_encoded(
    model: torch.nn.Module,
    items: list[dict[str, Any]],
    pad_id: int,
    batch_size: int = 16,
    keep_tokens: bool = True,
    desc: str | None = None,
    mask_id: int | None = None,
    vocab_dim_1: bool = False,
) -> list[ScoredAnswer]:
    """Score already-encoded items (``input_ids`` / ``labels``) in length-sorted batches (little
    padding); results come back in the original order. ``desc`` shows a progress bar;
    ``mask_id`` gives the batches open-unlearning's attention mask (``pad_batch``) and
    ``vocab_dim_1`` its ``avg_loss`` arithmetic (``vocab_dim_1_mean_nll``; the token log-probs
    stay obliviate's, as open-unlearning's own token-wise metrics compute them)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]), reverse=True)
    device = next(model.parameters()).device
    out: list[ScoredAnswer | None] = [None] * len(items)
    empty = torch.empty(0)
    for start in progress_bar(range(0, len(order), batch_size), desc):
        idx = order[start : start + batch_size]
        batch = pad_batch([items[i] for i in idx], pad_id, mask_id=mask_id)
        lp, logits = forward_logprobs(model, {k: v.to(device) for k, v in batch.items()})
        mean_nll = -lp.mean
        if vocab_dim_1:  # the logits kept are the last T' positions: the labels' same window
            labels = batch["labels"][:, -logits.size(1) :].to(device)
            mean_nll = vocab_dim_1_mean_nll(logits, labels)
        avg, sums = mean_nll.tolist(), lp.sum.tolist()
        preds = logits[:, :-1].argmax(-1) if keep_tokens else None  # (B, T'-1)
        for row, i in enumerate(idx):
            m = lp.mask[row]
            out[i] = ScoredAnswer(
                avg_loss=avg[row],
                sum_logp=sums[row],
                token_logp=lp.token_logp[row][m].cpu() if keep_tokens else empty,
                pred_ids=preds[row][m].cpu() if keep_tokens else empty,
                label_ids=lp.targets[row][m].cpu() if keep_tokens else empty,
            )
    return out  # type: ignore[return-value]


def progress_bar(it: Any, desc: str | None) -> Any:
    if desc is None:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, desc=desc, leave=False)
