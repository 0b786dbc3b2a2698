"""The baseline methods' losses against numbers worked out by hand (math module, not torch):
DPO, WGA, SatImp, UNDIAL, CE-U and RMU's activation distance."""

from __future__ import annotations

import math

import pytest
import torch

from obliviate.methods.ceu import drop_first_tokens
from obliviate.methods.losses import (
    activation_mse,
    ceu_loss,
    dpo_loss,
    satimp_weights,
    undial_loss,
    weighted_ascent_loss,
    wga_weights,
)

# ---- DPO ----------------------------------------------------------------------------------


def test_dpo_loss_by_hand():
    # winner: log pi = -2, ref -3 (+1); loser: log pi = -5, ref -4 (-1). margin 2, beta 0.1.
    got = dpo_loss(
        torch.tensor([-2.0]), torch.tensor([-3.0]), torch.tensor([-5.0]), torch.tensor([-4.0]), 0.1
    )
    expected = math.log1p(math.exp(-0.2))  # -log sigmoid(0.2)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_dpo_loss_is_ln2_at_the_reference_and_averages_items():
    lp = torch.tensor([-7.0, -1.5])
    assert dpo_loss(lp, lp, lp + 1, lp + 1, 0.1).item() == pytest.approx(math.log(2), rel=1e-6)
    # Two items with margins +3 and -1 at beta 0.5: the mean of -log sigmoid(1.5), -log sigmoid(-0.5).
    got = dpo_loss(
        torch.tensor([0.0, 0.0]),
        torch.tensor([-1.0, 0.0]),
        torch.tensor([0.0, 0.0]),
        torch.tensor([2.0, -1.0]),
        0.5,
    )
    expected = (math.log1p(math.exp(-1.5)) + math.log1p(math.exp(0.5))) / 2
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_dpo_prefers_the_winner():
    """Raising the winner's log-prob lowers the loss; raising the loser's raises it."""
    lw = torch.tensor([-3.0], requires_grad=True)
    ll = torch.tensor([-3.0], requires_grad=True)
    dpo_loss(lw, torch.tensor([-3.0]), ll, torch.tensor([-3.0]), 0.1).backward()
    # d/d lw of -log sigmoid(beta m) at m=0: -beta * sigmoid(0) = -0.05
    assert lw.grad.item() == pytest.approx(-0.05, rel=1e-6)
    assert ll.grad.item() == pytest.approx(0.05, rel=1e-6)


# ---- WGA / SatImp -------------------------------------------------------------------------

P = [[0.5, 0.25], [0.8, 1.0]]  # the second row's second token is padding
MASK = torch.tensor([[True, True], [True, False]])


def token_logp() -> torch.Tensor:
    return torch.tensor([[math.log(p) for p in row] for row in P], requires_grad=True)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_wga_loss_and_its_detached_weights(beta):
    lp = token_logp()
    loss = weighted_ascent_loss(lp, MASK, wga_weights(lp, beta))
    terms = [p**beta * math.log(p) for p in (0.5, 0.25, 0.8)]
    assert loss.item() == pytest.approx(sum(terms) / 3, rel=1e-6)
    # Weights are detached: d loss / d log p_t = p_t^beta / N, not (1 + beta log p_t) p_t^beta / N.
    loss.backward()
    expected = [0.5**beta / 3, 0.25**beta / 3, 0.8**beta / 3, 0.0]
    assert lp.grad.flatten().tolist() == pytest.approx(expected, rel=1e-5)


def test_satimp_loss_by_hand():
    lp = token_logp()
    w = satimp_weights(lp, 5.0, 1.0)
    assert w[0].tolist() == pytest.approx([0.5**5 * 0.5, 0.25**5 * 0.75], rel=1e-5)
    loss = weighted_ascent_loss(lp, MASK, w)
    terms = [p**5 * (1 - p) * math.log(p) for p in (0.5, 0.25, 0.8)]
    assert loss.item() == pytest.approx(sum(terms) / 3, rel=1e-5)
    loss.backward()
    assert lp.grad[1, 0].item() == pytest.approx(0.8**5 * 0.2 / 3, rel=1e-5)
    # beta2 = 0 leaves only saturation, p^beta1 (WGA's weight with beta = beta1).
    assert satimp_weights(lp, 2.0, 0.0)[0].tolist() == pytest.approx([0.5**2, 0.25**2], rel=1e-6)


# ---- UNDIAL -------------------------------------------------------------------------------


def test_undial_loss_by_hand():
    e = math.e
    # One answer token (vocab 3) and one masked position with a garbage target.
    logits = torch.tensor([[[0.0, 1.0, 2.0], [5.0, -5.0, 0.0]]], requires_grad=True)
    ref = torch.tensor([[[3.0, 1.0, 0.0], [0.0, 0.0, 9.0]]])
    targets = torch.tensor([[0, -100]])
    mask = torch.tensor([[True, False]])
    loss = undial_loss(logits, ref, targets, mask, beta=2.0)
    # Teacher logits [3-2, 1, 0] = [1, 1, 0] -> q = [e, e, 1] / (2e + 1).
    # H(q, p) = logsumexp(z) - sum_k q_k z_k = ln(1 + e + e^2) - (e * 1 + 1 * 2) / (2e + 1).
    expected = math.log(1 + e + e * e) - (e + 2) / (2 * e + 1)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # Gradient w.r.t. the student's logits is softmax(z) - q; masked position gets none.
    z = [math.exp(k) / (1 + e + e * e) for k in (0, 1, 2)]
    q = [e / (2 * e + 1), e / (2 * e + 1), 1 / (2 * e + 1)]
    assert logits.grad[0, 0].tolist() == pytest.approx(
        [a - b for a, b in zip(z, q, strict=True)], abs=1e-6
    )
    assert logits.grad[0, 1].abs().sum().item() == 0.0


def test_undial_with_beta_zero_is_distillation_to_the_reference():
    logits = torch.tensor([[[0.2, -0.3, 1.0, 0.5]]])
    ref = torch.tensor([[[1.0, 0.0, 0.0, 2.0]]])
    loss = undial_loss(logits, ref, torch.tensor([[3]]), torch.tensor([[True]]), beta=0.0)
    q = [math.exp(v) / sum(math.exp(u) for u in (1, 0, 0, 2)) for v in (1, 0, 0, 2)]
    lse = math.log(sum(math.exp(v) for v in (0.2, -0.3, 1.0, 0.5)))
    expected = -sum(qk * (zk - lse) for qk, zk in zip(q, (0.2, -0.3, 1.0, 0.5), strict=True))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# ---- CE-U ---------------------------------------------------------------------------------


def test_ceu_loss_by_hand():
    e = math.e
    logits = torch.tensor([[[0.0, 1.0, 2.0]]], requires_grad=True)
    loss = ceu_loss(logits, torch.tensor([[2]]), torch.tensor([[True]]))
    # q = softmax([0, 1, -inf]) = [1, e, 0] / (1 + e); H(q, p) = ln(1 + e + e^2) - e / (1 + e).
    expected = math.log(1 + e + e * e) - e / (1 + e)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    p = [math.exp(k) / (1 + e + e * e) for k in (0, 1, 2)]
    q = [1 / (1 + e), e / (1 + e), 0.0]
    # The target is detached: the gradient is softmax(z) - q, pushing the true token (index 2) down.
    assert logits.grad[0, 0].tolist() == pytest.approx(
        [a - b for a, b in zip(p, q, strict=True)], abs=1e-6
    )
    assert logits.grad[0, 0, 2].item() > 0


def test_ceu_drops_the_first_answer_tokens():
    mask = torch.tensor([[False, True, True, True, False], [True, True, False, False, False]])
    assert drop_first_tokens(mask, 1).tolist() == [
        [False, False, True, True, False],
        [False, True, False, False, False],
    ]
    assert drop_first_tokens(mask, 0).tolist() == mask.tolist()


# ---- RMU ----------------------------------------------------------------------------------


def test_activation_mse_by_hand():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    control = 5.0 * torch.tensor([0.6, 0.8])  # c u with |u| = 1: (3, 4)
    # token 0: ((1-3)^2 + (2-4)^2) / 2 = 4; token 1: 0.
    assert activation_mse(h, control, torch.tensor([[True, False]])).item() == pytest.approx(4.0)
    assert activation_mse(h, control, torch.tensor([[True, True]])).item() == pytest.approx(2.0)
    ref = torch.tensor([[[1.0, 1.0], [0.0, 4.0]]])  # per-token targets
    # token 0: (0 + 1) / 2 = 0.5; token 1: (9 + 0) / 2 = 4.5; mean 2.5.
    assert activation_mse(h, ref, torch.tensor([[True, True]])).item() == pytest.approx(2.5)
