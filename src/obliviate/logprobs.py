"""The one per-sequence log-probability helper, shared by every loss and every TOFU metric.

Causal-LM convention: the logit at position t predicts token t+1, so logits are shifted left
and labels right by one. Positions whose label is -100 (prompt, padding) carry no probability.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

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
