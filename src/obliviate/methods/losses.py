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


def dpo_loss(
    logp_w: torch.Tensor,
    ref_logp_w: torch.Tensor,
    logp_l: torch.Tensor,
    ref_logp_l: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO (Rafailov et al., 2023, arXiv 2305.18290):
    mean_i -log sigmoid(beta * [(log pi(w_i) - log pi_ref(w_i)) - (log pi(l_i) - log pi_ref(l_i))]).

    All inputs: (B,) sequence log-probs summed over answer tokens; w the preferred (winner)
    answer, l the rejected (loser) one. Equal to ln 2 while the model is the reference.
    """
    margin = (logp_w - ref_logp_w) - (logp_l - ref_logp_l)
    return -F.logsigmoid(beta * margin).mean()


def weighted_ascent_loss(
    token_logp: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Token-weighted gradient ascent: sum_t w_t log p_t / (number of answer tokens).

    Minimising it lowers log p_t with strength w_t; the weights are detached, so the gradient
    with respect to log p_t is exactly w_t / N. token_logp, mask, weights: (B, T).
    """
    return (weights.detach() * token_logp * mask).sum() / mask.sum().clamp(min=1)


def wga_weights(token_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """WGA (Wang et al., 2025, arXiv 2502.19301): w_t = p_t ** beta, detached. (B, T)"""
    return torch.exp(beta * token_logp.detach())


def satimp_weights(token_logp: torch.Tensor, beta1: float, beta2: float) -> torch.Tensor:
    """SatImp (Yang et al., 2025, arXiv 2505.11953): w_t = p_t ** beta1 * (1 - p_t) ** beta2,
    detached. p ** beta1 is the saturation term, (1 - p) ** beta2 the importance term. (B, T)"""
    logp = token_logp.detach()
    one_minus_p = -torch.expm1(logp)  # 1 - p without cancellation when p is tiny
    return torch.exp(beta1 * logp) * one_minus_p.clamp(min=0) ** beta2


def undial_loss(
    logits: torch.Tensor,
    ref_logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """UNDIAL (Dong et al., 2024, arXiv 2402.10052): cross-entropy from the model to the
    reference distribution whose true-token logit is lowered by beta,
    H(softmax(z_ref - beta * onehot(y)), softmax(z)), averaged over answer tokens.

    logits, ref_logits: (B, T, V) aligned with targets, mask: (B, T).
    """
    safe_targets = targets.clamp(min=0).unsqueeze(-1)  # masked positions carry -100
    adjusted = (
        ref_logits.detach()
        .float()
        .scatter_add(-1, safe_targets, torch.full_like(safe_targets, -beta, dtype=torch.float32))
    )
    soft = F.softmax(adjusted, dim=-1)  # (B, T, V)
    ce = -(soft * F.log_softmax(logits.float(), dim=-1)).sum(-1)  # (B, T)
    return (ce * mask).sum() / mask.sum().clamp(min=1)


def ceu_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CE-U (Yang, 2025, arXiv 2503.01224): cross-entropy from the model to its own detached
    distribution with the true token removed (its logit set to -inf, the rest renormalised),
    averaged over answer tokens.

    logits: (B, T, V) aligned with targets, mask: (B, T). The gradient with respect to the logits
    is softmax(z) - q: it pushes the true token's probability to 0 and keeps the others' ratios.
    """
    safe_targets = targets.clamp(min=0).unsqueeze(-1)
    target_logits = logits.detach().float().scatter(-1, safe_targets, float("-inf"))
    q = F.softmax(target_logits, dim=-1)  # (B, T, V), 0 at the true token
    ce = -(q * F.log_softmax(logits.float(), dim=-1)).sum(-1)  # (B, T)
    return (ce * mask).sum() / mask.sum().clamp(min=1)


def activation_mse(hidden: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RMU's loss (Li et al., 2024, arXiv 2403.03218): mean over the masked tokens of the mean
    over hidden units of (h - target)^2.

    hidden: (B, T, D); target: (B, T, D) or broadcastable, e.g. the steering vector (D,);
    mask: (B, T).
    """
    sq = (hidden.float() - target.float()).pow(2).mean(-1)  # (B, T)
    return (sq * mask).sum() / mask.sum().clamp(min=1)
