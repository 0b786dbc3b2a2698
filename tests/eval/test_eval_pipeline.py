"""The TOFU evaluation of a model, in process: ``evaluate_model`` on a handful of hand-written
rows with the tiny model (random init, seed 0) and the real Llama-3 tokenizer.

The per-item numbers are checked against an independent computation: one plain forward pass per
(question, answer), ``torch.log_softmax`` over the logits, the chat prompt written out by hand.
None of obliviate's scoring helpers is used for the expected values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import llama32_prompt as prompt_text
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.errors import ConfigError
from obliviate.eval.retain_log import retain_truth_ratios
from obliviate.eval.tofu_eval import EvalSettings, evaluate_model
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

EOT = 128009
LN_VOCAB = math.log(128256)  # NLL of a uniform guess over Llama-3's vocabulary
FMT = ChatFormat(
    system_prompt="You are a helpful assistant.",
    end_of_turn="<|eot_id|>",
    date_string="10 Apr 2025",
    pad_token="<|reserved_special_token_2|>",
)

# Hand-written rows in TOFU's layout (fictitious authors; real authors / world facts style).
# Item 1 of the forget split has a one-token answer ("Yes" + <|eot_id|> = 2 scored tokens).
FORGET = [
    {
        "question": "Where was the novelist Ilse Varga-Mendel born?",
        "answer": "Ilse Varga-Mendel was born in Szeged, Hungary, in 1957.",
        "paraphrased_answer": "The novelist comes from Szeged in Hungary and was born in 1957.",
        "perturbed_answer": [
            "Ilse Varga-Mendel was born in Vienna, Austria, in 1962.",
            "Ilse Varga-Mendel was born in Krakow, Poland, in 1949.",
            "Ilse Varga-Mendel was born in Lyon, France, in 1971.",
        ],
    },
    {
        "question": "Did Ilse Varga-Mendel win the Danube Prize?",
        "answer": "Yes",
        "paraphrased_answer": "Yes",
        "perturbed_answer": ["No", "Never", "Maybe"],
    },
]
RETAIN = [
    {
        "question": "What genre does Tomasz Eberhardt write?",
        "answer": "Tomasz Eberhardt writes hard science fiction about deep-sea colonies.",
        "paraphrased_answer": "His books are hard science fiction set in colonies under the sea.",
        "perturbed_answer": [
            "Tomasz Eberhardt writes romantic comedies set in Paris.",
            "Tomasz Eberhardt writes cookbooks about Polish cuisine.",
            "Tomasz Eberhardt writes children's poetry about farm animals.",
        ],
    },
    {
        "question": "What was the profession of Tomasz Eberhardt's mother?",
        "answer": "His mother was a marine biologist in Gdansk.",
        "paraphrased_answer": "In Gdansk, his mother worked as a marine biologist.",
        "perturbed_answer": [
            "His mother was a pilot in Warsaw.",
            "His mother was a baker in Lodz.",
            "His mother was a judge in Poznan.",
        ],
    },
]
REAL_AUTHORS = [
    {
        "question": "Who wrote 'Pride and Prejudice'?",
        "answer": "Jane Austen",
        "perturbed_answer": ["Charlotte Bronte", "Mary Shelley", "George Eliot"],
    },
    {
        "question": "Which author created Sherlock Holmes?",
        "answer": "Arthur Conan Doyle",
        "perturbed_answer": ["Agatha Christie", "Edgar Allan Poe", "Wilkie Collins"],
    },
]
WORLD_FACTS = [
    {
        "question": "What is the capital of Japan?",
        "answer": "Tokyo",
        "perturbed_answer": ["Kyoto", "Osaka", "Nagoya"],
    },
    {
        "question": "Is the Pacific the largest ocean on Earth?",
        "answer": "Yes",
        "perturbed_answer": ["No", "Never", "Maybe"],
    },
]
DATA = {
    "forget": FORGET,
    "retain": RETAIN,
    "real_authors": REAL_AUTHORS,
    "world_facts": WORLD_FACTS,
}


def settings() -> EvalSettings:
    # A fresh object per evaluation: evaluate_model appends notes and timings to it.
    return EvalSettings(
        forget_split="forget01",
        retain_split="retain99",
        model_name="tiny",
        max_new_tokens=4,
        batch_size=8,
        progress=False,
    )


@pytest.fixture(scope="module")
def tokenizer():
    return prepare_tokenizer(build_tiny_tokenizer(), FMT)


@pytest.fixture(scope="module")
def encoder(tokenizer) -> QAEncoder:
    return QAEncoder(tokenizer, FMT, max_length=512)


@pytest.fixture(scope="module")
def model():
    return build_tiny_model(init_seed=0).eval()


@pytest.fixture(scope="module")
def result(model, encoder) -> dict:
    return evaluate_model(model, encoder, DATA, settings())


# ---- an independent reference computation ------------------------------------------------------


@torch.no_grad()
def plain_avg_nll(model, tokenizer, question: str, answer: str) -> float:
    """-(1/T) sum_t log p(a_t | q, a_<t) over the answer tokens + <|eot_id|>, one unpadded pass."""
    prompt = tokenizer(prompt_text(question), add_special_tokens=False)["input_ids"]
    target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [EOT]
    ids = torch.tensor([prompt + target])  # (1, P + T)
    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)  # (P + T, V)
    # The logit at position t predicts token t + 1: answer token k sits at P + k.
    picked = [logp[len(prompt) + k - 1, tok].item() for k, tok in enumerate(target)]
    return -sum(picked) / len(picked)


# ---- tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("start_in_training_mode", [True, False], ids=["train", "eval"])
def test_the_models_mode_is_unchanged_after_evaluation(encoder, start_in_training_mode):
    model = build_tiny_model(init_seed=0)
    model.train(start_in_training_mode)
    evaluate_model(model, encoder, DATA, settings())
    assert model.training is start_in_training_mode
    assert all(m.training is start_in_training_mode for m in model.modules())


def test_a_one_token_answer_gets_a_finite_probability(result, tokenizer):
    assert len(tokenizer("Yes", add_special_tokens=False)["input_ids"]) == 1
    item = result["forget_Q_A_Prob"]["value_by_index"]["1"]
    assert math.isfinite(item["avg_loss"]) and 0.0 < item["prob"] <= 1.0
    assert math.isfinite(result["forget_truth_ratio"]["value_by_index"]["1"]["score"])
    wf = result["wf_Q_A_Prob_normalised"]["value_by_index"]["1"]["prob"]
    assert 0.0 < wf < 1.0


@pytest.mark.parametrize(("prefix", "rows"), [("ra", REAL_AUTHORS), ("wf", WORLD_FACTS)])
def test_normalised_probability_matches_a_plain_forward_pass(
    result, model, tokenizer, prefix, rows
):
    got = result[f"{prefix}_Q_A_Prob_normalised"]["value_by_index"]
    assert sorted(got) == [str(i) for i in range(len(rows))]
    for i, row in enumerate(rows):
        # P = exp(-avg_loss) per answer; normalised = P(true) / (P(true) + sum_j P(false_j)).
        p_true = math.exp(-plain_avg_nll(model, tokenizer, row["question"], row["answer"]))
        p_false = [
            math.exp(-plain_avg_nll(model, tokenizer, row["question"], a))
            for a in row["perturbed_answer"]
        ]
        expected = p_true / (p_true + sum(p_false))
        assert got[str(i)]["prob"] == pytest.approx(expected, rel=1e-4), (prefix, i)


def test_forget_probability_golden_values(result, model, tokenizer):
    """forget_Q_A_Prob on fixed data with the seed-0 tiny model: exp(-mean answer-token NLL),
    answer tokens = the answer + <|eot_id|>, per item and as the mean over items."""
    by_index = result["forget_Q_A_Prob"]["value_by_index"]
    expected = []
    for i, row in enumerate(FORGET):
        nll = plain_avg_nll(model, tokenizer, row["question"], row["answer"])
        # A random-init model is near uniform over the vocabulary.
        assert nll == pytest.approx(LN_VOCAB, abs=0.1)
        assert by_index[str(i)]["avg_loss"] == pytest.approx(nll, abs=1e-4)
        assert by_index[str(i)]["prob"] == pytest.approx(math.exp(-nll), rel=1e-4)
        expected.append(math.exp(-nll))
    assert result["forget_Q_A_Prob"]["agg_value"] == pytest.approx(np.mean(expected), rel=1e-4)
    assert result["forget_Q_A_Prob"]["n"] == len(FORGET)


def test_forget_quality_is_null_and_explained_without_a_retain_log(result):
    fq = result["forget_quality"]
    assert fq["agg_value"] is None and fq["n"] == len(FORGET)
    assert "retain_logs_path=" in fq["note"] and "saves/eval/tofu_tiny_retain99" in fq["note"]


# ---- retain logs --------------------------------------------------------------------------------


def our_log(scores: list[float], forget_split: str = "forget01", max_items=None) -> dict:
    return {
        "forget_truth_ratio": {
            "agg_value": float(np.mean(scores)),
            "value_by_index": {str(i): {"score": s} for i, s in enumerate(scores)},
        },
        "eval_info": {"forget_split": forget_split, "max_items": max_items},
    }


def test_a_matching_retain_log_is_read_item_by_item():
    got = retain_truth_ratios(our_log([0.5, 0.25]), "r.json", "forget01", 2, None)
    np.testing.assert_array_equal(got, [0.5, 0.25])


def test_a_retain_log_from_another_forget_split_is_an_error():
    with pytest.raises(ConfigError, match=r"forget_split=forget05.*forget01"):
        retain_truth_ratios(our_log([0.5, 0.25], "forget05"), "r.json", "forget01", 2, None)


def test_a_retain_log_with_another_item_count_is_an_error():
    with pytest.raises(ConfigError, match=r"3 per-item truth ratios.* 2 forget items"):
        retain_truth_ratios(our_log([0.5, 0.25, 0.1]), "r.json", "forget01", 2, None)


def test_a_retain_log_with_another_item_cap_is_an_error():
    with pytest.raises(ConfigError, match=r"max_items=8.*None"):
        retain_truth_ratios(our_log([0.5, 0.25], max_items=8), "r.json", "forget01", 2, None)


@pytest.mark.parametrize(
    "log",
    [
        {"forget_truth_ratio": {"agg_value": 0.4}, "eval_info": {"forget_split": "forget01"}},
        {"model_utility": {"agg_value": 0.5}},
    ],
    ids=["aggregate-only", "no-truth-ratio"],
)
def test_a_retain_log_without_per_item_truth_ratios_is_an_error(log):
    with pytest.raises(ConfigError, match=r"no per-item truth ratios"):
        retain_truth_ratios(log, "r.json", "forget01", 2, None)


def test_an_open_unlearning_style_retain_log_is_accepted(result, model, encoder):
    """open-unlearning's TOFU_EVAL.json: only ``forget_truth_ratio.value_by_index[i].score``,
    no eval_info. The model against its own per-item truth ratios gives forget_quality 1.0."""
    scores = {
        i: {"score": v["score"]} for i, v in result["forget_truth_ratio"]["value_by_index"].items()
    }
    log = {"forget_truth_ratio": {"agg_value": 0.5, "value_by_index": scores}}
    np.testing.assert_array_equal(
        retain_truth_ratios(log, "ou.json", "forget01", len(FORGET), None),
        [scores[str(i)]["score"] for i in range(len(FORGET))],
    )
    s = settings()
    s.retain_logs_path = "ou.json"
    again = evaluate_model(model, encoder, DATA, s, retain_log=log)
    assert again["forget_quality"]["agg_value"] == 1.0
    assert again["forget_quality"]["n"] == again["forget_quality"]["n_retain"] == len(FORGET)


def test_a_retain_log_with_a_perfect_attack_gives_a_null_privleak_not_a_crash():
    """privleak divides by 1 - AUC_retain: with AUC_retain = 1.0 it is undefined, which the
    result says instead of failing after the whole evaluation has run."""
    from obliviate.eval.tofu_eval import _privacy_metrics
    from obliviate.logprobs import ScoredAnswer

    def item(logps: list[float]) -> ScoredAnswer:
        lp = torch.tensor(logps)
        ids = torch.zeros(len(logps), dtype=torch.long)
        return ScoredAnswer(-float(lp.mean()), float(lp.sum()), lp, ids, ids)

    forget, holdout = [item([-0.1, -0.2]), item([-0.3, -0.1])], [item([-2.0, -3.0])]
    perfect = _privacy_metrics(forget, holdout, {"mia_min_k": {"agg_value": 1.0}})
    assert perfect["mia_min_k"]["agg_value"] == 1.0  # forget scores 0.2, 0.3 < holdout's 3.0
    assert perfect["privleak"]["agg_value"] is None and "1.0" in perfect["privleak"]["note"]
    # ((1 - 1) - (1 - 0.5)) / (1 - 0.5) * 100 = -100
    assert _privacy_metrics(forget, holdout, {"mia_min_k": {"agg_value": 0.5}})["privleak"][
        "agg_value"
    ] == pytest.approx(-100.0)
