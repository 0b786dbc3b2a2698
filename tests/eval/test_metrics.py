"""TOFU metric maths against numbers worked out by hand (metrics.md definitions)."""

import math
import re
from fractions import Fraction

import numpy as np
import pytest
import torch

from obliviate.eval.metrics import (
    MODEL_UTILITY_KEYS,
    exact_memorization,
    extraction_strength,
    forget_quality,
    harmonic_mean,
    min_k_score,
    model_utility,
    normalised_probability,
    privleak,
    probability,
    roc_auc,
    rouge_l_recall,
    rouge_scores,
    truth_ratio,
    truth_ratio_closer_to_1,
    truth_ratio_true_better,
)

LN2, LN4, LN10 = math.log(2), math.log(4), math.log(10)


# --- probability ----------------------------------------------------------------------------


def test_probability_is_exp_of_minus_avg_loss():
    # exp(-0) = 1, exp(-ln 2) = 1/2, exp(-ln 10) = 1/10
    got = probability(np.array([0.0, LN2, LN10]))
    np.testing.assert_allclose(got, [1.0, 0.5, 0.1], rtol=1e-12)


def test_probability_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        probability(np.array([0.1, float("nan")]))


# --- truth ratio ----------------------------------------------------------------------------

# Two items, K = 2 perturbed answers each.
#   item 0: true loss 1, false losses (2, 4) -> P_true = e^-1, P_false = sqrt(e^-2 * e^-4) = e^-3
#           R0 = e^-3 / e^-1 = e^-2 ~ 0.135  (true answer preferred)
#   item 1: true loss 2, false losses (1, 2) -> P_true = e^-2, P_false = sqrt(e^-1 * e^-2) = e^-1.5
#           R1 = e^-1.5 / e^-2 = e^0.5 ~ 1.649  (R > 1: perturbed answers preferred)
TR_TRUE = np.array([1.0, 2.0])
TR_FALSE = np.array([[2.0, 4.0], [1.0, 2.0]])
R0, R1 = math.exp(-2.0), math.exp(0.5)


def test_truth_ratio_by_hand():
    np.testing.assert_allclose(truth_ratio(TR_TRUE, TR_FALSE), [R0, R1], rtol=1e-12)


def test_truth_ratio_closer_to_1_by_hand():
    # min(R0, 1/R0) = R0 = e^-2 ; min(R1, 1/R1) = 1/R1 = e^-0.5
    expected = (math.exp(-2.0) + math.exp(-0.5)) / 2  # ~ 0.3709
    assert truth_ratio_closer_to_1(np.array([R0, R1])) == pytest.approx(expected, rel=1e-12)


def test_truth_ratio_true_better_by_hand():
    # max(0, 1 - e^-2) = 0.8647 ; max(0, 1 - e^0.5) = max(0, -0.649) = 0 (clipped)
    expected = (1 - math.exp(-2.0) + 0.0) / 2  # ~ 0.4323
    assert truth_ratio_true_better(np.array([R0, R1])) == pytest.approx(expected, rel=1e-12)


def test_truth_ratio_does_not_underflow():
    # Losses of 2000 give P = e^-2000 = 0 in float64; the ratio is still e^(2000 - 2001) = e^-1.
    got = truth_ratio(np.array([2000.0]), np.array([[2000.0, 2002.0]]))
    np.testing.assert_allclose(got, [math.exp(-1.0)], rtol=1e-12)


def test_truth_ratio_aggregators_handle_zero_and_inf():
    # R = 0 and R = inf: min(R, 1/R) = 0 for both; max(0, 1 - R) = 1 and 0.
    r = np.array([0.0, np.inf])
    assert truth_ratio_closer_to_1(r) == 0.0
    assert truth_ratio_true_better(r) == 0.5


def test_truth_ratio_bad_input():
    with pytest.raises(ValueError, match="items"):
        truth_ratio(np.array([1.0, 2.0]), np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=re.escape("-1.0")):
        truth_ratio_true_better(np.array([0.5, -1.0]))
    with pytest.raises(ValueError, match="empty"):
        truth_ratio_closer_to_1(np.array([]))


# --- normalised probability -----------------------------------------------------------------


def test_normalised_probability_by_hand():
    # item 0: P_true = 1/2, P_false = (1/4, 1/4) -> (1/2) / (1/2 + 1/2) = 1/2
    # item 1: P_true = 1,   P_false = (1/4, 1/4) -> 1 / (1 + 1/2) = 2/3
    got = normalised_probability(np.array([LN2, 0.0]), np.array([[LN4, LN4], [LN4, LN4]]))
    np.testing.assert_allclose(got, [0.5, 2 / 3], rtol=1e-12)


def test_normalised_probability_is_stable_for_tiny_probabilities():
    # P_true = e^-1000, P_false = e^-1001 both underflow to 0; the ratio is 1 / (1 + e^-1).
    got = normalised_probability(np.array([1000.0]), np.array([[1001.0]]))
    np.testing.assert_allclose(got, [1 / (1 + math.exp(-1.0))], rtol=1e-12)


# --- ROUGE ----------------------------------------------------------------------------------


def test_rouge_l_recall_with_stemming():
    # reference tokens: the cat is run(ning) fast -> 5 tokens; prediction: a cat run(s)
    # "running" and "runs" both stem to "run"; LCS = (cat, run) = 2 -> recall 2/5
    got = rouge_l_recall(["a cat runs"], ["the cat is running fast"])
    assert got == [pytest.approx(0.4)]


def test_rouge_l_recall_exact_match_and_no_overlap():
    got = rouge_l_recall(
        ["Paris is the capital.", "blue sky"], ["Paris is the capital.", "green grass"]
    )
    assert got == [1.0, 0.0]


def test_rouge_scores_by_hand():
    # reference: cat sat on the mat (5 tokens); prediction: the mat cat (3 tokens)
    # rouge1: overlapping unigrams {the, mat, cat} = 3 -> recall 3/5
    # rougeL: LCS = "the mat" = 2 -> recall 2/5, precision 2/3, F1 = 2PR/(P+R) = 1/2
    (got,) = rouge_scores(["the mat cat"], ["cat sat on the mat"])
    p, r = Fraction(2, 3), Fraction(2, 5)
    assert got["rouge1_recall"] == pytest.approx(0.6)
    assert got["rougeL_recall"] == pytest.approx(0.4)
    assert got["rougeL_f1"] == pytest.approx(float(2 * p * r / (p + r)))  # = 0.5


def test_rouge_length_mismatch():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_l_recall(["a", "b"], ["a"])


# --- harmonic mean and model utility --------------------------------------------------------


def test_harmonic_mean_by_hand():
    # 3 / (1/1 + 1/2 + 1/4) = 3 / (7/4) = 12/7
    assert harmonic_mean([1.0, 2.0, 4.0]) == pytest.approx(12 / 7, rel=1e-12)


def test_harmonic_mean_zero_negative_nan_empty():
    assert harmonic_mean([0.5, 0.0, 0.9]) == 0.0
    with pytest.raises(ValueError, match=re.escape("-0.1")):
        harmonic_mean([0.5, -0.1])
    with pytest.raises(ValueError, match="nan"):
        harmonic_mean([0.5, float("nan")])
    with pytest.raises(ValueError, match="empty"):
        harmonic_mean([])


def test_model_utility_by_hand():
    # three values of 1/2, three of 1/4, three of 1: 9 / (3*2 + 3*4 + 3*1) = 9/21 = 3/7
    values = dict(zip(MODEL_UTILITY_KEYS, [0.5] * 3 + [0.25] * 3 + [1.0] * 3, strict=True))
    values["forget_Q_A_Prob"] = 0.0  # not one of the nine: ignored
    assert len(MODEL_UTILITY_KEYS) == 9
    assert model_utility(values) == pytest.approx(3 / 7, rel=1e-12)
    values["wf_Truth_Ratio"] = 0.0
    assert model_utility(values) == 0.0


def test_model_utility_missing_key():
    values = dict.fromkeys(MODEL_UTILITY_KEYS, 0.5)
    del values["ra_Q_A_ROUGE"]
    with pytest.raises(ValueError, match="ra_Q_A_ROUGE"):
        model_utility(values)


# --- forget quality (KS test) ---------------------------------------------------------------


def test_forget_quality_identical_samples_is_one():
    r = np.linspace(0.1, 2.0, 40)
    assert forget_quality(r, r.copy()) == 1.0


def test_forget_quality_fully_separated_n40_is_exact():
    # Fully separated samples of n = m: D = 1, and the exact two-sided probability is the share of
    # the C(2n, n) equally likely orderings that are fully separated (2 of them): 2 / C(80, 40).
    n = 40
    expected = 2 / math.comb(2 * n, n)  # ~ 1.86e-23
    got = forget_quality(np.arange(n, dtype=float), np.arange(n, dtype=float) + 1000)
    assert got == pytest.approx(expected, rel=1e-6)


def test_forget_quality_fully_separated_n400_is_about_1e_239():
    n = 400
    got = forget_quality(np.arange(n, dtype=float) + 1000, np.arange(n, dtype=float))
    assert 1e-241 < got < 1e-237  # 2 / C(800, 400) ~ 1.06e-239, GradDiff's published value


def test_forget_quality_empty():
    with pytest.raises(ValueError, match="empty"):
        forget_quality(np.array([]), np.array([1.0]))


# --- exact memorisation and extraction strength ---------------------------------------------


def test_exact_memorization_by_hand():
    # positions 0, 2, 4 match -> 3/5
    pred, label = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([1, 0, 3, 0, 5])
    assert exact_memorization(pred, label) == pytest.approx(0.6)


def test_extraction_strength_cases():
    label = torch.tensor([1, 2, 3, 4])  # N = 4
    assert extraction_strength(torch.tensor([1, 2, 3, 4]), label) == 1.0  # k = 0
    assert extraction_strength(torch.tensor([1, 9, 3, 4]), label) == 0.5  # k = 2: 1 - 2/4
    assert extraction_strength(torch.tensor([9, 9, 9, 4]), label) == 0.25  # only last: 1/N
    assert extraction_strength(torch.tensor([1, 2, 3, 9]), label) == 0.0  # last token wrong


def test_zero_length_item_is_nan_not_a_crash():
    empty = torch.tensor([], dtype=torch.long)
    assert math.isnan(exact_memorization(empty, empty))
    assert math.isnan(extraction_strength(empty, empty))


def test_token_metrics_length_mismatch():
    with pytest.raises(ValueError, match="3 vs 2"):
        exact_memorization(torch.tensor([1, 2, 3]), torch.tensor([1, 2]))


# --- min-k, AUC, privleak -------------------------------------------------------------------


def test_min_k_score_by_hand():
    # T = 5, k = 0.4 -> int(2.0) = 2 lowest: -3.0, -2.0 -> mean -2.5 -> score 2.5
    assert min_k_score(np.array([-0.1, -2.0, -0.5, -3.0, -1.0])) == pytest.approx(2.5)
    # T = 2, k = 0.4 -> int(0.8) = 0 -> at least 1 token: the lowest, -4.0 -> score 4.0
    assert min_k_score(np.array([-1.0, -4.0])) == pytest.approx(4.0)
    # k = 1: mean of all -> -(-1 - 3) / 2 = 2
    assert min_k_score(np.array([-1.0, -3.0]), k=1.0) == pytest.approx(2.0)


def test_min_k_score_bad_input():
    with pytest.raises(ValueError, match="empty"):
        min_k_score(np.array([]))
    with pytest.raises(ValueError, match=re.escape("1.5")):
        min_k_score(np.array([-1.0]), k=1.5)


def test_roc_auc_by_hand_with_ties():
    # members (1, 2, 3), non-members (2, 4): count (non-member, member) pairs, ties = 1/2
    #   nm = 2: > 1 -> 1, = 2 -> 1/2, < 3 -> 0      => 3/2
    #   nm = 4: > 1, 2, 3                            => 3
    # AUC = (3/2 + 3) / (3 * 2) = 3/4
    assert roc_auc(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])) == pytest.approx(0.75)


def test_roc_auc_extremes():
    # memorised forget set: members score lower than every non-member -> 1; reversed -> 0
    assert roc_auc(np.array([0.1, 0.2]), np.array([0.5, 0.6, 0.7])) == 1.0
    assert roc_auc(np.array([0.5, 0.6, 0.7]), np.array([0.1, 0.2])) == 0.0
    assert roc_auc(np.array([0.3, 0.3]), np.array([0.3])) == 0.5  # all tied


def test_privleak_by_hand():
    # ((1 - 0.9) - (1 - 0.6)) / (1 - 0.6) * 100 = (0.1 - 0.4) / 0.4 * 100 = -75
    assert privleak(0.9, 0.6) == pytest.approx(-75.0)
    # ((1 - 0.5) - (1 - 0.6)) / 0.4 * 100 = (0.1 / 0.4) * 100 = 25
    assert privleak(0.5, 0.6) == pytest.approx(25.0)
    assert privleak(0.6, 0.6) == 0.0


def test_privleak_degenerate_reference():
    with pytest.raises(ValueError, match="degenerate"):
        privleak(0.9, 1.0)
    with pytest.raises(ValueError, match=re.escape("1.2")):
        privleak(1.2, 0.5)
