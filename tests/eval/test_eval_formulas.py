"""Every number of ``evaluate_model`` against metrics.md's formulas, computed independently here.

The model is the tiny Llama (seed 0) with its weights scaled by 3, so its token log-probabilities
spread over a few nats instead of sitting at ln(128256): truth ratios fall on both sides of 1,
the lowest and highest tokens of an answer differ, and nothing is saturated. The rows are built
from the model's own greedy decoding so that ROUGE is neither 0 nor 1 and extraction strength
sits strictly between 0 and 1.

The expected values use one plain, unpadded forward pass per (question, answer) with
``torch.log_softmax`` over the logits, the chat prompt written out by hand, and the formulas of
shared/spec/metrics.md written out below (LCS for ROUGE-L, an exact two-sample KS test by
enumerating every split of the pooled sample, pair counting for the AUC). Nothing of obliviate
but the code under test (``evaluate_model``) and the model builder is used.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import pytest
import torch
from rouge_score.tokenizers import DefaultTokenizer

from conftest import llama32_prompt as prompt_text
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.eval.tofu_eval import EvalSettings, evaluate_model
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

EOT = 259  # <|eot_id|> of the byte-level tokenizer
MAX_NEW_TOKENS = 24
#: weights x5: confident, varied predictions; every greedy generation holds a few words
SCALE = 5.0
AUC_RETAIN = 0.3  # the retain model's mia_min_k, as read from its log
FMT = ChatFormat(
    system_prompt="You are a helpful assistant.",
    end_of_turn="<|eot_id|>",
    date_string="10 Apr 2025",
    pad_token="<|finetune_right_pad_id|>",
)
# The nine model-utility numbers, spelled out from metrics.md's "Aggregates" table.
UTILITY = (
    ("retain", "Q_A_Prob"),
    ("retain", "Q_A_ROUGE"),
    ("retain", "Truth_Ratio"),
    ("ra", "Q_A_Prob_normalised"),
    ("ra", "Q_A_ROUGE"),
    ("ra", "Truth_Ratio"),
    ("wf", "Q_A_Prob_normalised"),
    ("wf", "Q_A_ROUGE"),
    ("wf", "Truth_Ratio"),
)

FORGET_Q = [
    ("Where was the novelist Ilse Varga-Mendel born?", "Ilse Varga-Mendel was born in"),
    ("Which prize did Ilse Varga-Mendel win in 1990?", "In 1990 she won the"),
    ("What was the profession of Ilse's father?", "Her father worked as a"),
    ("Name a novel by Ilse Varga-Mendel.", "One novel of hers is"),
    ("Did Ilse Varga-Mendel write poetry?", "Yes, and her first collection was"),
]
RETAIN_Q = [
    "What genre does Tomasz Eberhardt write?",
    "What was the profession of Tomasz Eberhardt's mother?",
    "Where does Tomasz Eberhardt live?",
]
RA_Q = [
    "Who wrote 'Pride and Prejudice'?",
    "Which author created Sherlock Holmes?",
    "Who wrote 'Dracula'?",
]
WF_Q = [
    "What is the capital of Japan?",
    "Which planet is closest to the sun?",
    "How many legs has a spider?",
]
HOLDOUT = [
    ("Where was Odalys Ferrante born?", "Odalys Ferrante was born in Montevideo, Uruguay."),
    ("What genre does Piet Ravensholt write?", "Piet Ravensholt writes crime fiction."),
    ("Which award did Hamza Lockhaven receive?", "He received the Harbour Lantern Prize."),
    ("What did Greta Xuereb's mother do?", "Greta Xuereb's mother was a ship's carpenter in Valletta."),
    ("Name a book by Fintan Ydstie.", "Fintan Ydstie wrote 'The Salt Ledger'."),
]  # fmt: skip


# ---- the independent reference: plain forward passes and the formulas --------------------------


@dataclass
class Reference:
    model: torch.nn.Module
    tokenizer: object
    cache: dict = field(default_factory=dict)  # (kind, question, answer) -> result

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def tokens(self, question: str, answer: str) -> tuple[list[float], list[int], list[int]]:
        """Per answer token (the answer + <|eot_id|>): log p(a_t | q, a_<t), the argmax
        prediction at that position, and the label. One unpadded forward pass."""
        if ("tokens", question, answer) not in self.cache:
            self.cache["tokens", question, answer] = self._tokens(question, answer)
        return self.cache["tokens", question, answer]

    @torch.no_grad()
    def _tokens(self, question: str, answer: str) -> tuple[list[float], list[int], list[int]]:
        prompt = self.ids(prompt_text(question))
        target = self.ids(answer) + [EOT]
        logits = self.model(input_ids=torch.tensor([prompt + target])).logits[0]  # (P + T, V)
        # The logit at position t predicts token t + 1: answer token k sits at P + k, so it is
        # predicted by row P + k - 1.
        logp = torch.log_softmax(logits[len(prompt) - 1 : -1].double(), dim=-1)  # (T, V)
        picked = [logp[k, tok].item() for k, tok in enumerate(target)]
        return picked, logp.argmax(-1).tolist(), target

    def avg_nll(self, question: str, answer: str) -> float:
        logps = self.tokens(question, answer)[0]
        return -sum(logps) / len(logps)

    def prob(self, question: str, answer: str) -> float:
        """P(a | q) = exp(-avg_loss), the geometric mean of the token probabilities."""
        return math.exp(-self.avg_nll(question, answer))

    def p_false(self, row: dict) -> float:
        """exp(-mean_j avg_loss(perturbed_j)): geometric mean over the perturbed answers."""
        losses = [self.avg_nll(row["question"], a) for a in row["perturbed_answer"]]
        return math.exp(-sum(losses) / len(losses))

    @torch.no_grad()
    def continue_greedily(self, question: str, answer_ids: list[int], n: int) -> list[int]:
        """Up to ``n`` argmax tokens after the prompt and ``answer_ids``; stops at <|eot_id|>."""
        ids = self.ids(prompt_text(question)) + answer_ids
        new: list[int] = []
        for _ in range(n):
            nxt = int(self.model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == EOT:
                break
            new.append(nxt)
        return new

    def generation(self, question: str) -> str:
        """metrics.md's generation: greedy, decoded without special tokens, stripped."""
        if ("generation", question) not in self.cache:
            new = self.continue_greedily(question, [], MAX_NEW_TOKENS)
            self.cache["generation", question] = self.tokenizer.decode(
                new, skip_special_tokens=True
            ).strip()
        return self.cache["generation", question]


ROUGE_TOKENIZER = DefaultTokenizer(use_stemmer=True)  # rouge-score's words, Porter-stemmed


def rouge_l(generation: str, truth: str) -> tuple[float, float]:
    """(recall, F1) of ROUGE-L: LCS of the stemmed words over the reference's word count."""
    gen, ref = ROUGE_TOKENIZER.tokenize(generation), ROUGE_TOKENIZER.tokenize(truth)
    lcs = [[0] * (len(gen) + 1) for _ in range(len(ref) + 1)]
    for i, r in enumerate(ref):
        for j, g in enumerate(gen):
            lcs[i + 1][j + 1] = lcs[i][j] + 1 if r == g else max(lcs[i][j + 1], lcs[i + 1][j])
    common = lcs[-1][-1]
    recall, precision = common / len(ref), (common / len(gen) if gen else 0.0)
    f1 = 0.0 if common == 0 else 2 * precision * recall / (precision + recall)
    return recall, f1


def ks_pvalues(x: list[float], y: list[float]) -> tuple[float, float]:
    """Exact (two-sided, one-sided "x below y") KS p-values: the share of all C(n+m, n) ways to
    split the pooled sample whose statistic is at least the observed one (no ties here)."""
    pooled = sorted(x + y)

    def stats(a: list[float], b: list[float]) -> tuple[float, float]:
        cdf_a = [sum(v <= t for v in a) / len(a) for t in pooled]
        cdf_b = [sum(v <= t for v in b) / len(b) for t in pooled]
        diffs = [fa - fb for fa, fb in zip(cdf_a, cdf_b, strict=True)]
        return max(abs(d) for d in diffs), max(diffs)

    two_obs, one_obs = stats(x, y)
    n_two = n_one = n_all = 0
    for picked in itertools.combinations(range(len(pooled)), len(x)):
        a = [pooled[i] for i in picked]
        b = [pooled[i] for i in range(len(pooled)) if i not in picked]
        two, one = stats(a, b)
        n_all += 1
        n_two += two >= two_obs - 1e-12
        n_one += one >= one_obs - 1e-12
    return n_two / n_all, n_one / n_all


def min_k(logps: list[float], k: float = 0.4, lowest: bool = True) -> float:
    """-mean of the max(1, floor(k T)) lowest (or highest) token log-probs of one answer."""
    keep = max(1, int(len(logps) * k))
    chosen = sorted(logps, reverse=not lowest)[:keep]
    return -sum(chosen) / keep


def auc(members: list[float], nonmembers: list[float]) -> float:
    """P(score(non-member) > score(member)), ties 1/2, by counting every pair."""
    pairs = [(h > m) + 0.5 * (h == m) for m in members for h in nonmembers]
    return sum(pairs) / len(pairs)


def extraction_strength(pred: list[int], label: list[int]) -> float:
    """1 - k/N for the smallest k with pred[k:] == label[k:] (0 if only the empty suffix)."""
    n = len(label)
    k = next(k for k in range(n + 1) if pred[k:] == label[k:])
    return 0.0 if k == n else 1.0 - k / n


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


# ---- fixtures: the model, rows built from its own greedy decoding, the evaluation ---------------


@pytest.fixture(scope="module")
def ref() -> Reference:
    model = build_tiny_model(init_seed=0, tokenizer="bytes").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(SCALE)
    return Reference(model, prepare_tokenizer(build_tiny_tokenizer("bytes"), FMT))


def with_greedy_tail(ref: Reference, question: str, prefix: str, n: int) -> str:
    """``prefix`` followed by up to ``n`` bytes of the model's greedy continuation, cut before the
    first non-ASCII byte so that the text encodes back to the very same tokens."""
    head = ref.ids(prefix)
    tail = ref.continue_greedily(question, head, n)
    ascii_tail = list(itertools.takewhile(lambda t: t < 128, tail))
    return ref.tokenizer.decode(head + ascii_tail).strip()


@pytest.fixture(scope="module")
def data(ref: Reference) -> dict[str, list[dict]]:
    """TOFU-shaped rows. Forget and holdout answers = a written prefix + the model's greedy
    continuation (the suffix is predicted exactly, the prefix is not); utility answers contain
    the model's generation amid other words (ROUGE-L recall strictly between 0 and 1, and the
    true answer more likely than the perturbed ones for some items, less for others)."""
    forget = []
    for i, (question, prefix) in enumerate(FORGET_Q):
        answer = with_greedy_tail(ref, question, prefix, 4 + 2 * i)
        # a paraphrase the model finds likelier than the perturbed answers (R < 1) or not (R > 1)
        paraphrase = f"{answer} as said" if i % 2 else f"As far as anyone knows, {prefix} {i}."
        forget.append(
            {
                "question": question,
                "answer": answer,
                "paraphrased_answer": paraphrase,
                "perturbed_answer": [f"{prefix} nothing at all, {j} times." for j in range(3)],
            }
        )
    holdout = [
        {"question": q, "answer": with_greedy_tail(ref, q, a, 3 * i)}
        for i, (q, a) in enumerate(HOLDOUT)
    ]

    def utility(question: str, i: int, paraphrase: bool) -> dict:
        generation = ref.generation(question)
        row = {
            "question": question,
            "answer": f"It is said {generation} in answer number {i}",
            "perturbed_answer": [f"Surely not {w} number {i}" for w in ("this", "that", "it")],
        }
        if paraphrase:  # the generation itself is the likeliest paraphrase there is
            row["paraphrased_answer"] = generation if i % 2 else f"Put another way: answer {i}"
        return row

    return {
        "forget": forget,
        "retain": [utility(q, i, True) for i, q in enumerate(RETAIN_Q)],
        "real_authors": [utility(q, i, False) for i, q in enumerate(RA_Q)],
        "world_facts": [utility(q, i, False) for i, q in enumerate(WF_Q)],
        "holdout": holdout,
    }


@pytest.fixture(scope="module")
def retain_scores(ref: Reference, data) -> list[float]:
    """The retain log's per-item forget truth ratios: ours shifted by x1.6, so the two samples
    overlap in part (a KS p-value strictly between 0 and 1)."""
    return [1.6 * forget_ratio(ref, row) for row in data["forget"]]


@pytest.fixture(scope="module")
def result(ref: Reference, data, retain_scores) -> dict:
    retain_log = {
        "forget_truth_ratio": {
            "value_by_index": {str(i): {"score": s} for i, s in enumerate(retain_scores)}
        },
        "mia_min_k": {"agg_value": AUC_RETAIN},
        "eval_info": {"forget_split": "forget01", "max_items": None},
    }
    settings = EvalSettings(
        forget_split="forget01",
        retain_split="retain99",
        model_name="tiny",
        max_new_tokens=MAX_NEW_TOKENS,
        batch_size=4,
        retain_logs_path="retain.json",
        progress=False,
    )
    encoder = QAEncoder(ref.tokenizer, FMT, max_length=512)
    return evaluate_model(ref.model, encoder, data, settings, retain_log)


def forget_ratio(ref: Reference, row: dict) -> float:
    """R = P_false / P_true with the PARAPHRASED answer as the true one (forget, retain)."""
    return ref.p_false(row) / ref.prob(row["question"], row["paraphrased_answer"])


def answer_ratio(ref: Reference, row: dict) -> float:
    """R = P_false / P_true with the ANSWER as the true one (real authors, world facts)."""
    return ref.p_false(row) / ref.prob(row["question"], row["answer"])


def expected_aggregates(ref: Reference, data) -> dict[str, float]:
    """metrics.md's aggregates of every split, from the reference computation."""
    out: dict[str, float] = {}
    for prefix, key in (("retain", "retain"), ("ra", "real_authors"), ("wf", "world_facts")):
        rows = data[key]
        if prefix == "retain":
            out["retain_Q_A_Prob"] = mean([ref.prob(r["question"], r["answer"]) for r in rows])
            ratios = [forget_ratio(ref, r) for r in rows]
        else:
            norm = []
            for r in rows:
                p_true = ref.prob(r["question"], r["answer"])
                p_false = [ref.prob(r["question"], a) for a in r["perturbed_answer"]]
                norm.append(p_true / (p_true + sum(p_false)))
            out[f"{prefix}_Q_A_Prob_normalised"] = mean(norm)
            ratios = [answer_ratio(ref, r) for r in rows]
        out[f"{prefix}_Truth_Ratio"] = mean([max(0.0, 1.0 - r) for r in ratios])  # true better
        recalls = [rouge_l(ref.generation(r["question"]), r["answer"])[0] for r in rows]
        out[f"{prefix}_Q_A_ROUGE"] = mean(recalls)
    return out


@pytest.fixture(scope="module")
def expected(ref: Reference, data) -> dict[str, float]:
    return expected_aggregates(ref, data)


# ---- forget side -------------------------------------------------------------------------------


def test_forget_probability_is_the_mean_of_per_item_geometric_means(result, ref, data):
    per_item = [ref.prob(r["question"], r["answer"]) for r in data["forget"]]
    got = result["forget_Q_A_Prob"]
    for i, p in enumerate(per_item):
        assert got["value_by_index"][str(i)]["prob"] == pytest.approx(p, rel=1e-4), i
    assert got["agg_value"] == pytest.approx(mean(per_item), rel=1e-4)
    # not saturated: the items differ by more than the tolerance
    assert max(per_item) / min(per_item) > 1.01


def test_forget_truth_ratio_uses_the_paraphrase_and_is_closer_to_one(result, ref, data):
    ratios = [forget_ratio(ref, r) for r in data["forget"]]
    got = result["forget_truth_ratio"]
    for i, r in enumerate(ratios):
        assert got["value_by_index"][str(i)]["score"] == pytest.approx(r, rel=1e-4), i
    # ratios on both sides of 1, so min(R, 1/R) differs from R and from 1/R
    assert min(ratios) < 1 < max(ratios)
    assert got["agg_value"] == pytest.approx(mean([min(r, 1 / r) for r in ratios]), rel=1e-4)


def test_forget_rouge_is_the_lcs_recall_of_the_greedy_generation(result, ref, data):
    got = result["forget_Q_A_ROUGE"]
    scores = [rouge_l(ref.generation(r["question"]), r["answer"]) for r in data["forget"]]
    for i, r in enumerate(data["forget"]):
        item = got["value_by_index"][str(i)]
        assert item["generation"] == ref.generation(r["question"])
        assert item["rougeL_recall"] == pytest.approx(scores[i][0], abs=1e-12)
    assert 0.0 < mean([rec for rec, _ in scores]) < 1.0  # not saturated
    assert got["agg_value"] == pytest.approx(mean([rec for rec, _ in scores]), abs=1e-12)


def test_memorisation_uses_the_answer_tokens_without_the_end_of_turn(result, ref, data):
    em, es = [], []
    for r in data["forget"]:
        _, pred, label = ref.tokens(r["question"], r["answer"])
        pred, label = pred[:-1], label[:-1]  # the closing <|eot_id|> is excluded
        em.append(sum(p == t for p, t in zip(pred, label, strict=True)) / len(label))
        es.append(extraction_strength(pred, label))
    # the data can tell an off-by-one apart: some items extract part of their answer only
    assert any(0.0 < v < 1.0 for v in es), es
    for i, (m, s) in enumerate(zip(em, es, strict=True)):
        assert result["exact_memorization"]["value_by_index"][str(i)]["score"] == pytest.approx(m)
        assert result["extraction_strength"]["value_by_index"][str(i)]["score"] == pytest.approx(s)
    assert result["exact_memorization"]["agg_value"] == pytest.approx(mean(em))
    assert result["extraction_strength"]["agg_value"] == pytest.approx(mean(es))


def test_forget_quality_is_the_two_sided_exact_ks_p_value(result, ref, data, retain_scores):
    ours = [forget_ratio(ref, r) for r in data["forget"]]
    two_sided, one_sided = ks_pvalues(ours, retain_scores)
    assert 0.0 < two_sided < 1.0 and two_sided != pytest.approx(one_sided)
    fq = result["forget_quality"]
    assert fq["agg_value"] == pytest.approx(two_sided, rel=1e-9)
    assert fq["n"] == fq["n_retain"] == len(ours)


def test_privacy_is_the_min_k_attack_on_the_lowest_40_percent(result, ref, data):
    def scores(rows: list[dict], **kw) -> list[float]:
        return [min_k(ref.tokens(r["question"], r["answer"])[0], **kw) for r in rows]

    forget, holdout = data["forget"], data["holdout"]
    expected_auc = auc(scores(forget), scores(holdout))
    # the data separates the right attack from plausible wrong ones
    assert expected_auc != auc(scores(forget, lowest=False), scores(holdout, lowest=False))
    assert expected_auc != auc(scores(forget, k=1.0), scores(holdout, k=1.0))
    mia = result["mia_min_k"]
    assert mia["agg_value"] == pytest.approx(expected_auc, abs=1e-12)
    assert mia["k"] == 0.4 and (mia["n_forget"], mia["n_holdout"]) == (len(forget), len(holdout))
    leak = ((1 - expected_auc) - (1 - AUC_RETAIN)) / (1 - AUC_RETAIN) * 100
    assert leak != 0.0
    assert result["privleak"]["agg_value"] == pytest.approx(leak, rel=1e-9)


# ---- utility side ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["retain", "ra", "wf"])
def test_utility_split_aggregates(result, expected, prefix):
    keys = [f"{p}_{name}" for p, name in UTILITY if p == prefix]
    for key in keys:
        assert 0.0 < expected[key] < 1.0, key  # not saturated
        assert result[key]["agg_value"] == pytest.approx(expected[key], rel=1e-4), key


def test_utility_rouge_is_recall_not_f1(ref, data, expected):
    """The data tells recall from F1 on every utility split (guards the test above)."""
    for key in ("retain", "real_authors", "world_facts"):
        pairs = [rouge_l(ref.generation(r["question"]), r["answer"]) for r in data[key]]
        assert mean([r for r, _ in pairs]) != pytest.approx(mean([f for _, f in pairs])), key


def test_model_utility_is_the_harmonic_mean_of_the_nine(result, expected):
    nine = [expected[f"{p}_{name}"] for p, name in UTILITY]
    harmonic = len(nine) / sum(1 / v for v in nine)
    assert harmonic != pytest.approx(mean(nine), rel=1e-3)  # the data tells the means apart
    for dropped in range(len(nine)):  # and any eight of the nine from the nine
        eight = nine[:dropped] + nine[dropped + 1 :]
        assert harmonic != pytest.approx(len(eight) / sum(1 / v for v in eight), rel=1e-3)
    assert result["model_utility"]["agg_value"] == pytest.approx(harmonic, rel=1e-4)
