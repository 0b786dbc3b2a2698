"""Unlearning losses as pure tensor functions of per-sequence (or per-token) quantities.

The trainers only gather the inputs (log-probs from ``obliviate.logprobs``); everything that
decides a number lives here and is tested against hand-computed values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nll_loss(token_logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-mean negative log-likelihood over all answer tokens of the batch.

    token_logp, mask: (B, T). This is the usual causal-LM loss (what ``model(labels=...)``
    returns for one batch).
    """
    return -(token_logp * mask).sum() / mask.sum().clamp(min=1)


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO (Zhang et al., 2024, arXiv 2404.05868):
    mean_i -(2/beta) * log sigmoid(-beta * (log pi_theta(y_i|x_i) - log pi_ref(y_i|x_i))).

    logp, ref_logp: (B,) sequence log-probs summed over answer tokens.
    """
    return (-2.0 / beta * F.logsigmoid(-beta * (logp - ref_logp))).mean()


def simnpo_loss(avg_nll: torch.Tensor, beta: float, delta: float = 0.0) -> torch.Tensor:
    """SimNPO (Fan et al., 2024, arXiv 2410.07163): reference-free, length-normalised NPO.
    mean_i -(2/beta) * log sigmoid(beta * (avg_nll_i - delta)).

    avg_nll: (B,) per-item answer NLL divided by its token count; delta: the reward margin
    (called ``gamma`` in the SimNPO paper's code).
    """
    return (-2.0 / beta * F.logsigmoid(beta * (avg_nll - delta))).mean()


def kl_retain_loss(
    logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """KL(p_ref || p_theta) per answer token, averaged over the answer tokens of the batch.

    logits, ref_logits: (B, T, V) already aligned with ``mask`` (B, T) (i.e. shifted).
    """
    logq = F.log_softmax(logits.float(), dim=-1)
    logp_ref = F.log_softmax(ref_logits.float(), dim=-1)
    kl = (logp_ref.exp() * (logp_ref - logq)).sum(-1)  # (B, T)
    return (kl * mask).sum() / mask.sum().clamp(min=1)
