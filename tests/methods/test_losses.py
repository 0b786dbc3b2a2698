"""Loss maths against numbers worked out by hand (the papers' formulas written out with math)."""

import math

import pytest
import torch

from obliviate.logprobs import sequence_logprobs
from obliviate.methods.losses import kl_retain_loss, nll_loss, npo_loss, simnpo_loss


def log_sigmoid(x: float) -> float:
    return math.log(1.0 / (1.0 + math.exp(-x)))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def softmax(logits: list[float]) -> list[float]:
    z = sum(math.exp(v) for v in logits)
    return [math.exp(v) / z for v in logits]


def kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) = sum_v p_v (log p_v - log q_v)."""
    return sum(pv * (math.log(pv) - math.log(qv)) for pv, qv in zip(p, q, strict=True))


# ---- NLL ------------------------------------------------------------------------------------


def test_nll_loss_is_token_mean_over_answer_tokens_of_the_batch():
    # item 0: answer tokens with log-probs -1, -2 (third position is padding, garbage value);
    # item 1: one answer token with log-prob -3. Token mean: (1 + 2 + 3) / 3 = 2, not the mean
    # of the per-item means ((1.5 + 3) / 2 = 2.25).
    token_logp = torch.tensor([[-1.0, -2.0, -50.0], [-3.0, -70.0, -80.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert nll_loss(token_logp, mask).item() == pytest.approx(2.0)


def test_nll_loss_without_answer_tokens_is_zero_not_nan():
    token_logp = torch.tensor([[-5.0, -6.0]])
    mask = torch.zeros(1, 2, dtype=torch.bool)
    assert nll_loss(token_logp, mask).item() == 0.0


# ---- NPO ------------------------------------------------------------------------------------


def test_npo_loss_single_item_by_hand():
    # -(2/beta) * log sigmoid(-beta * (logp - ref)), logp=-3, ref=-2, beta=0.1:
    # -(2/0.1) * log sigmoid(-0.1 * (-1)) = -20 * log sigmoid(0.1) = -20 * (-0.644397) = 12.88793
    expected = -(2 / 0.1) * log_sigmoid(-0.1 * (-3.0 - (-2.0)))
    assert expected == pytest.approx(12.88793, abs=1e-5)
    got = npo_loss(torch.tensor([-3.0]), torch.tensor([-2.0]), beta=0.1)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_npo_loss_is_mean_over_items_and_equals_2ln2_over_beta_at_the_reference():
    logp = torch.tensor([-3.0, -1.0, -7.5])
    ref = torch.tensor([-2.0, -2.0, -7.5])
    beta = 0.1
    per_item = [
        -(2 / beta) * log_sigmoid(-beta * (lp - r)) for lp, r in [(-3, -2), (-1, -2), (-7.5, -7.5)]
    ]
    # The third item sits at the reference: -(2/beta) log(1/2) = 20 ln 2.
    assert per_item[2] == pytest.approx(20 * math.log(2))
    assert npo_loss(logp, ref, beta).item() == pytest.approx(sum(per_item) / 3, rel=1e-6)


def test_npo_gradient_pushes_log_prob_down():
    # d/dlogp [-(2/beta) log sigmoid(-beta (logp - ref))] = 2 sigmoid(beta (logp - ref)) > 0,
    # so gradient descent lowers log p of the forget answer. One item: 2 sigmoid(-0.1).
    logp = torch.tensor([-3.0], requires_grad=True)
    npo_loss(logp, torch.tensor([-2.0]), beta=0.1).backward()
    assert logp.grad.item() == pytest.approx(2 * sigmoid(0.1 * (-3.0 + 2.0)), rel=1e-6)


# ---- SimNPO ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_simnpo_loss_by_hand(delta):
    # mean_i -(2/beta) log sigmoid(beta (avg_nll_i - delta)), beta = 4.5.
    beta = 4.5
    avg_nll = [2.0, 0.5]
    expected = sum(-(2 / beta) * log_sigmoid(beta * (x - delta)) for x in avg_nll) / 2
    got = simnpo_loss(torch.tensor(avg_nll), beta=beta, delta=delta)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_simnpo_loss_values_written_out():
    # delta=0: items 2.0 and 0.5 -> -(2/4.5) [log sigmoid(9) + log sigmoid(2.25)] / 2
    #   log sigmoid(9) = -0.000123402, log sigmoid(2.25) = -0.100206559
    #   -> (2/4.5) * 0.100329961 / 2 = 0.0222955
    # delta=1: items 1.0 and -0.5 -> log sigmoid(4.5) = -0.011047745, log sigmoid(-2.25) = -2.350206559
    #   -> (2/4.5) * 2.361254304 / 2 = 0.5247232
    assert simnpo_loss(torch.tensor([2.0, 0.5]), 4.5, 0.0).item() == pytest.approx(
        0.0222955, abs=1e-6
    )
    assert simnpo_loss(torch.tensor([2.0, 0.5]), 4.5, 1.0).item() == pytest.approx(
        0.5247232, abs=1e-6
    )


def test_simnpo_gradient_pushes_nll_up():
    # d/dx [-(2/beta) log sigmoid(beta (x - delta))] = -2 sigmoid(-beta (x - delta)) < 0:
    # descent raises the forget NLL. One item x=0.5, beta 4.5, delta 0: -2 sigmoid(-2.25).
    x = torch.tensor([0.5], requires_grad=True)
    simnpo_loss(x, beta=4.5, delta=0.0).backward()
    assert x.grad.item() == pytest.approx(-2 * sigmoid(-2.25), rel=1e-6)


# ---- KL retain loss -------------------------------------------------------------------------


def test_kl_retain_loss_on_two_tokens_and_three_words():
    # Token 1: theta logits [0, 0, 3], reference logits [1, 0, 0].
    # Token 2: theta logits [0, 0, 0] (uniform), reference logits [0, ln 2, ln 3] (1/6, 2/6, 3/6).
    # A third, masked position carries garbage and must not count.
    theta = [[0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [9.0, -9.0, 0.0]]
    ref = [[1.0, 0.0, 0.0], [0.0, math.log(2), math.log(3)], [-9.0, 9.0, 0.0]]
    k1 = kl(softmax(ref[0]), softmax(theta[0]))
    k2 = kl([1 / 6, 2 / 6, 3 / 6], [1 / 3, 1 / 3, 1 / 3])
    # Token 2 by hand: 1/6 ln(1/2) + 2/6 ln(1) + 3/6 ln(3/2) = 0.0872...
    assert k2 == pytest.approx(math.log(0.5) / 6 + 0.5 * math.log(1.5))
    expected = (k1 + k2) / 2
    # The direction matters: KL(p_ref || p_theta), not KL(p_theta || p_ref).
    reverse = (kl(softmax(theta[0]), softmax(ref[0])) + kl([1 / 3] * 3, [1 / 6, 2 / 6, 3 / 6])) / 2
    assert abs(expected - reverse) > 0.1

    mask = torch.tensor([[True, True, False]])
    got = kl_retain_loss(torch.tensor([theta]), torch.tensor([ref]), mask)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_kl_retain_loss_is_zero_for_identical_distributions():
    logits = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    assert kl_retain_loss(logits, logits.clone(), mask).item() == pytest.approx(0.0, abs=1e-6)


# ---- sequence_logprobs ----------------------------------------------------------------------


def test_sequence_logprobs_shift_mask_sum_count_mean():
    g = 1e3  # garbage logits at positions that must be ignored
    # Item 0: labels [-100, -100, 2, 0]. After the shift, the logits at position 1 predict
    # label 2 and those at position 2 predict label 0; position 0 (target -100) and position 3
    # (no next token) are ignored.
    #   pos 1 logits [0, 0, ln 2]  -> probs [1/4, 1/4, 1/2] -> log p(2) = ln(1/2)
    #   pos 2 logits [ln 3, 0, 0]  -> probs [3/5, 1/5, 1/5] -> log p(0) = ln(3/5)
    # sum = ln(0.3), count = 2, mean = ln(0.3) / 2.
    # Item 1: no answer token at all -> sum 0, count 0, mean NaN.
    logits = torch.tensor(
        [
            [[g, -g, 0.0], [0.0, 0.0, math.log(2)], [math.log(3), 0.0, 0.0], [-g, g, 0.0]],
            [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [0.0, 1.0, 0.0], [g, g, -g]],
        ]
    )
    labels = torch.tensor([[-100, -100, 2, 0], [-100, -100, -100, -100]])
    out = sequence_logprobs(logits, labels)

    assert out.mask.tolist() == [[False, True, True], [False, False, False]]
    assert out.targets.tolist() == [[-100, 2, 0], [-100, -100, -100]]
    expected_tokens = [[0.0, math.log(0.5), math.log(0.6)], [0.0, 0.0, 0.0]]
    for row_got, row_exp in zip(out.token_logp.tolist(), expected_tokens, strict=True):
        assert row_got == pytest.approx(row_exp, abs=1e-6)
    assert out.sum.tolist() == pytest.approx([math.log(0.3), 0.0], abs=1e-6)
    assert out.count.tolist() == [2, 0]
    assert out.mean[0].item() == pytest.approx(math.log(0.3) / 2, abs=1e-6)
    assert math.isnan(out.mean[1].item())


def test_sequence_logprobs_is_float32_for_half_logits():
    logits = torch.zeros(1, 3, 4, dtype=torch.bfloat16)
    labels = torch.tensor([[-100, 1, 2]])
    out = sequence_logprobs(logits, labels)
    assert out.token_logp.dtype == torch.float32
    # Uniform over 4 words: each answer token has log-prob ln(1/4).
    assert out.sum.item() == pytest.approx(2 * math.log(0.25), abs=1e-6)
