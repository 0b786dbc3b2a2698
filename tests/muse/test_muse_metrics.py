"""MUSE's metric pieces, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest

from obliviate.eval import metrics as M
from obliviate.eval.muse_metrics import cut_at_stops, knowmem_prompt, rouge_items

STOPS = ("\n\n", "\nQuestion", "Question:")


def test_rouge_l_f1_worked_example():
    # reference: the cat lay on a mat (6 tokens); generation: the cat sat on the mat today (7)
    # LCS = the, cat, on, mat = 4 -> P = 4/7, R = 4/6, F1 = 2PR / (P + R) = 32/52
    [item] = rouge_items(["the cat sat on the mat today"], ["the cat lay on a mat"], "paper")
    assert item["rougeL_f1"] == pytest.approx(32 / 52)
    assert item["rougeL_recall"] == pytest.approx(4 / 6)
    # unigram overlap: the x2 (reference has one "the") -> the, cat, on, mat = 4 -> recall 4/6
    assert item["rouge1_recall"] == pytest.approx(4 / 6)


def test_the_protocols_differ_in_stemming_only():
    # open-unlearning stems (cats -> cat, running -> run): a full match; the paper does not
    ou = rouge_items(["cat run"], ["cats running"], "open-unlearning")[0]["rougeL_f1"]
    paper = rouge_items(["cat run"], ["cats running"], "paper")[0]["rougeL_f1"]
    assert (ou, paper) == (1.0, 0.0)
    with pytest.raises(ValueError, match="MUSE protocol 'muse'"):
        rouge_items(["a"], ["a"], "muse")


def test_answers_end_at_the_earliest_stop_string():
    assert cut_at_stops(" Paris\n\nQuestion: next?", STOPS) == "Paris"
    assert cut_at_stops("Rome\nQuestion: next?", STOPS) == "Rome"
    assert cut_at_stops("a Question: b\n\nc", STOPS) == "a"  # the earliest, not the first listed
    assert cut_at_stops("\n\nParis", STOPS) == ""  # a leading blank line ends the answer at once
    assert cut_at_stops("  no stop here ", STOPS) == "no stop here"
    assert cut_at_stops(" Oslo</s>junk", ("</s>", *STOPS)) == "Oslo"
    assert cut_at_stops(" Oslo\n\n", STOPS, strip=False) == " Oslo"


def test_the_knowmem_prompt_is_musess_text_format():
    prompt = knowmem_prompt([("Q1?", "A1"), ("Q2?", "A2")], "Q3?")
    assert (
        prompt
        == "Question: Q1?\nAnswer: A1\n\nQuestion: Q2?\nAnswer: A2\n\nQuestion: Q3?\nAnswer: "
    )
    assert knowmem_prompt([], "Q?") == "Question: Q?\nAnswer: "


def test_the_papers_auc_is_one_minus_ours_and_privleak_agrees():
    # min-k scores (lower = more member-like): forget [1, 2, 3], holdout [2.5, 4]
    # ours: P(holdout > forget) over 6 pairs = 2.5>1, 2.5>2, 4>1, 4>2, 4>3 = 5/6
    forget, holdout = [1.0, 2.0, 3.0], [2.5, 4.0]
    auc = M.roc_auc(forget, holdout)
    assert auc == pytest.approx(5 / 6)
    # the paper labels holdout 1 and ranks by -score: P(-h > -f) = P(h < f) = 1/6 = 1 - ours
    paper_auc = sum(h < f for f in forget for h in holdout) / 6
    assert paper_auc == pytest.approx(1 - auc)
    # the paper's privleak (AUC - AUC_retrain) / AUC_retrain with its AUCs is ours with ours
    retain_auc = 0.55
    paper = (paper_auc - (1 - retain_auc)) / (1 - retain_auc) * 100
    assert M.privleak(auc, retain_auc) == pytest.approx(paper)
    assert M.privleak(auc, retain_auc) == pytest.approx((1 / 6 - 0.45) / 0.45 * 100)
