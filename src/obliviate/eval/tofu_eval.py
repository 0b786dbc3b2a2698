"""The TOFU evaluation of one model: every metric of metrics.md, per item and aggregated.

Key names follow open-unlearning's TOFU_EVAL.json, so logs are interchangeable both ways.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from obliviate.data.formatting import QAEncoder
from obliviate.eval import metrics as M
from obliviate.eval import ou_metrics as OU
from obliviate.eval import retain_log as RL
from obliviate.eval.scoring import (
    ScoredAnswer,
    decode_answer,
    greedy_generate,
    is_main_process,
    score_answers,
    shard_map,
)
from obliviate.eval.suite import without_items
from obliviate.protocol import NAMED, OBLIVIATE, Protocol

log = logging.getLogger("obliviate")
METRIC_VERSION = "obliviate-tofu-1"


class Split(NamedTuple):
    """One evaluated split and how metrics.md scores it."""

    prefix: str  # output key prefix: forget, retain, ra, wf
    key: str  # key of its rows in the evaluation data
    true_key: str  # the "true" answer of the truth ratio: paraphrased (forget, retain) or answer
    aggregator: str  # truth-ratio aggregate: closer_to_1 (forget) or true_better (the others)


SPLITS = (
    Split("forget", "forget", "paraphrased_answer", "closer_to_1"),
    Split("retain", "retain", "paraphrased_answer", "true_better"),
    Split("ra", "real_authors", "answer", "true_better"),
    Split("wf", "world_facts", "answer", "true_better"),
)
UTILITY_DATA_KEYS = ("retain", "real_authors", "world_facts")
#: min-k% membership attack: share of lowest-probability answer tokens (metrics.md, k = 0.4)
MIN_K = 0.4

# Headline metrics: (key, direction shown to users)
HEADLINE = (
    ("forget_quality", "↑ higher is better (1.0 = like the retain model)"),
    ("model_utility", "↑ higher is better"),
    ("forget_truth_ratio", "→ toward the retain model's value"),
    ("forget_Q_A_Prob", "↓ lower = more forgotten"),
    ("forget_Q_A_ROUGE", "↓ lower = more forgotten"),
    ("extraction_strength", "↓ lower = more forgotten"),
    ("exact_memorization", "↓ lower = more forgotten"),
    ("privleak", "→ near 0 is best"),
    ("retain_Q_A_Prob", "↑ higher is better"),
    ("retain_Q_A_ROUGE", "↑ higher is better"),
    ("retain_Truth_Ratio", "↑ higher is better"),
    ("ra_Q_A_Prob_normalised", "↑ higher is better"),
    ("ra_Q_A_ROUGE", "↑ higher is better"),
    ("ra_Truth_Ratio", "↑ higher is better"),
    ("wf_Q_A_Prob_normalised", "↑ higher is better"),
    ("wf_Q_A_ROUGE", "↑ higher is better"),
    ("wf_Truth_Ratio", "↑ higher is better"),
)


@dataclass
class EvalSettings:
    forget_split: str
    retain_split: str
    model_name: str
    max_items: int | None = None
    #: a further cap on the utility splits only (retain, real authors, world facts): a faster
    #: model_utility; forget items (and so forget_quality) are untouched
    utility_items: int | None = None
    max_new_tokens: int = 200
    batch_size: int = 32
    generation_batch_size: int | None = None  # None = batch_size
    retain_logs_path: str | None = None
    #: forget items (indices after ``max_items``) left out of every forget-side metric: the
    #: relearning attack's training sample (obliviate.attacks.relearn)
    exclude_forget: tuple[int, ...] = ()
    progress: bool = True
    #: obliviate's conventions (metrics.md) or open-unlearning's, item for item
    protocol: Protocol = field(default_factory=Protocol)
    notes: list[str] = field(default_factory=list)
    #: wall seconds per phase (scoring, generation, rouge) and generated-token count, filled in
    timings: dict[str, float] = field(default_factory=dict)


def _num(x: float) -> float | None:
    """JSON-safe float: NaN (no answer tokens) becomes null."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _answer_tokens(s: ScoredAnswer, eot_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Answer tokens without the closing end-of-turn (for EM and ES)."""
    if len(s.label_ids) and int(s.label_ids[-1]) == eot_id:
        return s.pred_ids[:-1], s.label_ids[:-1]
    return s.pred_ids, s.label_ids


def evaluate_model(
    model: torch.nn.Module,
    encoder: QAEncoder,
    data: dict[str, list[dict[str, Any]]],
    settings: EvalSettings,
    retain_log: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute every TOFU metric. ``data`` maps forget/retain/real_authors/world_facts (and
    optionally holdout) to rows. The model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        return _evaluate(model, encoder, data, settings, retain_log)
    finally:
        model.train(was_training)


def _evaluate(
    model: torch.nn.Module,
    encoder: QAEncoder,
    data: dict[str, list[dict[str, Any]]],
    settings: EvalSettings,
    retain_log: dict[str, Any] | None,
) -> dict[str, Any]:
    """The evaluation as a story: generate, score each split, then the forget-side and
    aggregate metrics. Key order of the result follows open-unlearning's TOFU_EVAL.json."""
    rows_by = _capped_rows(data, settings)
    gens_by = _generate(model, encoder, rows_by, settings)
    res: dict[str, Any] = {}
    forget_answers: list[ScoredAnswer] = []
    for split in SPLITS:
        rows = rows_by[split.key]
        answers, true_sc, false_sc = _score_split(model, encoder, split, rows, settings)
        proto = settings.protocol
        res.update(_probability_metrics(split, answers, true_sc, false_sc, proto))
        res.update(_truth_ratio_metric(split, true_sc, false_sc, proto))
        with _timed(settings.timings, "rouge"):
            truths = _ground_truths(encoder, rows, proto)
            res[f"{split.prefix}_Q_A_ROUGE"] = _rouge_metric(rows, truths, gens_by[split.prefix])
        if split.prefix == "forget":
            forget_answers = answers
    res.update(_memorisation_metrics(forget_answers, encoder.eot_id, settings.protocol))
    res["model_utility"] = _model_utility_metric(res)
    res["forget_quality"] = _forget_quality_metric(res["forget_truth_ratio"], settings, retain_log)
    holdout = rows_by.get("holdout")
    if holdout:
        pairs = [(r["question"], r["answer"]) for r in holdout]
        hold_sc = _score(model, encoder, pairs, "holdout", settings)
        res.update(_privacy_metrics(forget_answers, hold_sc, retain_log, settings.protocol))
    elif not any("holdout" in note for note in settings.notes):
        settings.notes.append(
            "no holdout split available: mia_min_k and privleak skipped (no made-up reference)"
        )
    res["eval_info"] = _eval_info(encoder, settings, rows_by)
    return res


def metric(
    agg_value: float | None, per_item: list[dict[str, Any]] | None = None, **info: Any
) -> dict[str, Any]:
    """One metric entry of TOFU_EVAL.json: ``agg_value``, then ``info`` (aggregator, notes,
    counts), then for per-item metrics ``value_by_index`` (keyed by the item's index in its
    split, as open-unlearning's logs) and their count ``n``."""
    entry: dict[str, Any] = {"agg_value": agg_value, **info}
    if per_item is not None:
        entry["value_by_index"] = {str(i): v for i, v in enumerate(per_item)}
        entry["n"] = len(per_item)
    return entry


def _capped_rows(
    data: dict[str, list[dict[str, Any]]], settings: EvalSettings
) -> dict[str, list[dict[str, Any]]]:
    """Rows per split after ``max_items`` (every split) and ``utility_items`` (utility only)."""
    cap = settings.max_items
    rows_by = {k: (v[:cap] if cap else v) for k, v in data.items()}
    if settings.utility_items:
        for key in UTILITY_DATA_KEYS:
            rows_by[key] = rows_by[key][: settings.utility_items]
    if settings.exclude_forget:
        rows_by["forget"] = without_items(rows_by["forget"], settings.exclude_forget)
    return rows_by


def _desc(settings: EvalSettings, text: str) -> str | None:
    """A progress-bar label, on the main process only."""
    return text if settings.progress and is_main_process() else None


def _generate(
    model: torch.nn.Module,
    encoder: QAEncoder,
    rows_by: dict[str, list[dict[str, Any]]],
    settings: EvalSettings,
) -> dict[str, list[str]]:
    """Greedy generations (for ROUGE) per split prefix. All splits go through one
    length-sorted pool: fewer, fuller batches. Under open-unlearning's protocol each split is
    generated on its own, in data order, ``batch_size`` prompts per batch, as it does there."""
    proto = settings.protocol

    def generate(questions: list[str]) -> list[str]:
        return shard_map(
            lambda part: greedy_generate(
                model,
                encoder,
                part,
                settings.max_new_tokens,
                settings.batch_size
                if proto.generation_per_split
                else settings.generation_batch_size or settings.batch_size,
                desc=_desc(settings, "generating"),
                stats=settings.timings,
                in_order=proto.generation_per_split,
                clean_up=proto.decoded_texts,
            ),
            questions,
        )

    with _timed(settings.timings, "generation"):
        if proto.generation_per_split:
            return {s.prefix: generate([r["question"] for r in rows_by[s.key]]) for s in SPLITS}
        questions = [(s.prefix, r["question"]) for s in SPLITS for r in rows_by[s.key]]
        flat = generate([q for _, q in questions])
    gens_by: dict[str, list[str]] = {s.prefix: [] for s in SPLITS}
    for (prefix, _), g in zip(questions, flat, strict=True):
        gens_by[prefix].append(g)
    return gens_by


def _score(
    model: torch.nn.Module,
    encoder: QAEncoder,
    pairs: list[tuple[str, str]],
    name: str,
    settings: EvalSettings,
) -> list[ScoredAnswer]:
    """Teacher-forced scores of (question, answer) pairs, sharded over the processes."""
    with _timed(settings.timings, "scoring"):
        return shard_map(
            lambda part: score_answers(
                model,
                encoder,
                part,
                settings.batch_size,
                desc=_desc(settings, f"scoring {name}"),
                vocab_dim_1=settings.protocol.vocab_dim_1_nll,
            ),
            pairs,
        )


def _score_split(
    model: torch.nn.Module,
    encoder: QAEncoder,
    split: Split,
    rows: list[dict[str, Any]],
    settings: EvalSettings,
) -> tuple[list[ScoredAnswer], list[ScoredAnswer], list[list[ScoredAnswer]]]:
    """Scores of each row's answer, its "true" answer (the paraphrase, or the answer itself)
    and its K perturbed answers ((n, K) nested), in one length-sorted pass over the split."""
    n = len(rows)
    pairs = [(r["question"], r["answer"]) for r in rows]
    if split.true_key != "answer":
        pairs += [(r["question"], r[split.true_key]) for r in rows]
    pairs += [(r["question"], p) for r in rows for p in r["perturbed_answer"]]
    scored = _score(model, encoder, pairs, split.prefix, settings)
    answers = scored[:n]
    true_sc = answers if split.true_key == "answer" else scored[n : 2 * n]
    k_false = len(rows[0]["perturbed_answer"])
    flat_false = scored[len(pairs) - n * k_false :]
    false_sc = [flat_false[i * k_false : (i + 1) * k_false] for i in range(n)]
    return answers, true_sc, false_sc


def _avg_losses(scored: list[ScoredAnswer]) -> np.ndarray:
    return np.array([s.avg_loss for s in scored])


def _false_avg_losses(false_sc: list[list[ScoredAnswer]]) -> np.ndarray:
    """(n, K) average NLL of the perturbed answers."""
    return np.array([[s.avg_loss for s in row] for row in false_sc])


def _prob_items(avg_loss: np.ndarray) -> list[dict[str, Any]]:
    prob = M.probability(avg_loss)
    return [{"prob": _num(p), "avg_loss": _num(a)} for p, a in zip(prob, avg_loss, strict=True)]


def _probability_metrics(
    split: Split,
    answers: list[ScoredAnswer],
    true_sc: list[ScoredAnswer],
    false_sc: list[list[ScoredAnswer]],
    proto: Protocol,
) -> dict[str, Any]:
    """Q_A_Prob (answer), Q_A_PARA_Prob (paraphrase, where it is the true answer), Q_A_PERT_Prob
    (perturbed answers) and, for real authors / world facts, the normalised probability."""
    out: dict[str, Any] = {}
    items = _prob_items(_avg_losses(answers))
    out[f"{split.prefix}_Q_A_Prob"] = metric(_mean([v["prob"] for v in items]), items)
    if split.true_key != "answer":
        items = _prob_items(_avg_losses(true_sc))
        out[f"{split.prefix}_Q_A_PARA_Prob"] = metric(_mean([v["prob"] for v in items]), items)
    avg_false = _false_avg_losses(false_sc)  # (n, K)
    p_pert = M.probability(avg_false)  # (n, K)
    pert_items = [
        {"prob": [_num(x) for x in p_row], "avg_loss": [_num(x) for x in a_row]}
        for p_row, a_row in zip(p_pert, avg_false, strict=True)
    ]
    out[f"{split.prefix}_Q_A_PERT_Prob"] = metric(float(np.nanmean(p_pert)), pert_items)
    if split.prefix in ("ra", "wf"):
        normalise = OU.normalised_probability if proto.epsilon else M.normalised_probability
        norm = normalise(_avg_losses(answers), avg_false)
        norm_items = [{"prob": _num(x)} for x in norm]
        out[f"{split.prefix}_Q_A_Prob_normalised"] = metric(
            _mean([v["prob"] for v in norm_items]), norm_items
        )
    return out


def _truth_ratio_metric(
    split: Split,
    true_sc: list[ScoredAnswer],
    false_sc: list[list[ScoredAnswer]],
    proto: Protocol,
) -> dict[str, Any]:
    """Per-item truth ratios R = P_false / P_true and the split's aggregate: closer_to_1 on
    forget, true_better on the others (metrics.md; open-unlearning's 1e-10s under its
    protocol)."""
    ou = proto.epsilon > 0
    ratio = OU.truth_ratio if ou else M.truth_ratio
    tr = ratio(_avg_losses(true_sc), _false_avg_losses(false_sc))  # (n,)
    ok = ~np.isnan(tr)
    closer = OU.truth_ratio_closer_to_1 if ou else M.truth_ratio_closer_to_1
    aggregate = closer if split.aggregator == "closer_to_1" else M.truth_ratio_true_better
    key = "forget_truth_ratio" if split.prefix == "forget" else f"{split.prefix}_Truth_Ratio"
    return {
        key: metric(
            aggregate(tr[ok]) if ok.any() else None,
            [{"score": _num(r)} for r in tr],
            aggregator=split.aggregator,
        )
    }


def _ground_truths(encoder: QAEncoder, rows: list[dict[str, Any]], proto: Protocol) -> list[str]:
    """The answers ROUGE compares with: as written, or (open-unlearning) decoded back from
    their token ids with its decoding settings."""
    if not proto.decoded_texts:
        return [r["answer"] for r in rows]
    return [
        decode_answer(encoder.tokenizer, encoder.answer_ids(r["answer"])[:-1], True) for r in rows
    ]


def _rouge_metric(rows: list[dict[str, Any]], truths: list[str], gens: list[str]) -> dict[str, Any]:
    """ROUGE-L recall of the greedy generations against the ground-truth answers."""
    scores = M.rouge_scores(gens, truths)
    items = [
        {**sc, "input": r["question"], "ground_truth": t, "generation": g}
        for sc, r, t, g in zip(scores, rows, truths, gens, strict=True)
    ]
    return metric(float(np.mean([sc["rougeL_recall"] for sc in scores])), items)


def _memorisation_metrics(
    forget_answers: list[ScoredAnswer], eot_id: int, proto: Protocol
) -> dict[str, Any]:
    """Exact memorisation and extraction strength of the forget answers (end-of-turn excluded)."""
    strength = OU.extraction_strength if proto.es_no_match_is_1_over_n else M.extraction_strength
    em, es = [], []
    for s in forget_answers:
        pred, lab = _answer_tokens(s, eot_id)
        em.append({"score": _num(M.exact_memorization(pred, lab))})
        es.append({"score": _num(strength(pred, lab))})
    return {
        "exact_memorization": metric(_mean([v["score"] for v in em]), em),
        "extraction_strength": metric(_mean([v["score"] for v in es]), es),
    }


def _model_utility_metric(res: dict[str, Any]) -> dict[str, Any]:
    """Harmonic mean of the nine retain / real-author / world-fact aggregates."""
    parts = {k: res[k]["agg_value"] for k in M.MODEL_UTILITY_KEYS}
    complete = all(v is not None for v in parts.values())
    return metric(M.model_utility(parts) if complete else None, components=parts)


def _forget_quality_metric(
    forget_truth_ratio: dict[str, Any], settings: EvalSettings, retain_log: dict[str, Any] | None
) -> dict[str, Any]:
    """Two-sided KS p-value between our per-item forget truth ratios and the retain model's;
    without a retain log, null and a note that says how to make one."""
    scores = [v["score"] for v in forget_truth_ratio["value_by_index"].values()]
    forget_tr = np.array(scores, dtype=float)
    n_f = len(forget_tr)
    info: dict[str, Any] = {"n": n_f, "retain_logs_path": settings.retain_logs_path}
    if retain_log is None:
        note = "no retain log: forget_quality not computed; " + RL.how_to_make(
            settings.model_name, settings.retain_split
        )
        return metric(None, **info, note=note)
    excluded = sorted(settings.exclude_forget)
    ref = RL.retain_truth_ratios(
        retain_log,
        settings.retain_logs_path or "?",
        settings.forget_split,
        n_f + len(excluded),
        settings.max_items,
    )
    ref = np.delete(ref, excluded)  # the reference on the same items as ours
    ours = forget_tr[~np.isnan(forget_tr)]
    value = M.forget_quality(ours, ref[~np.isnan(ref)])
    return metric(value, **info, n_retain=int((~np.isnan(ref)).sum()))


def _privacy_metrics(
    forget_answers: list[ScoredAnswer],
    holdout_answers: list[ScoredAnswer],
    retain_log: dict[str, Any] | None,
    proto: Protocol = NAMED[OBLIVIATE],
) -> dict[str, Any]:
    """min-k% membership attack AUC, forget (members) vs holdout (non-members), with each item's
    score per split, and privleak against the retain model's AUC (null without it: no made-up
    reference). Under ``drops_last_label`` the answer's last labelled token (its end-of-turn)
    is left out of the min-k% pool, as open-unlearning's token-wise log-probs leave it out."""
    scores = {
        split: [_min_k(s, proto) for s in answers]
        for split, answers in (("forget", forget_answers), ("holdout", holdout_answers))
    }
    auc = M.roc_auc(np.array(scores["forget"]), np.array(scores["holdout"]))
    auc_ret = RL.retain_mia_auc(retain_log) if retain_log else None
    if auc_ret is None:
        leak = metric(None, note="needs the retain log's mia_min_k (AUC_retain)")
    elif auc_ret == 1.0:  # privleak's denominator 1 - AUC_retain is 0: say so, do not crash
        leak = metric(None, note="the retain log's mia_min_k is 1.0: privleak is undefined")
    else:
        leak = metric(M.privleak(auc, auc_ret), note=None)
    per_split = {split: metric(_mean(v), [{"score": x} for x in v]) for split, v in scores.items()}
    mia = metric(
        auc, k=MIN_K, n_forget=len(scores["forget"]), n_holdout=len(scores["holdout"]), **per_split
    )
    return {"mia_min_k": mia, "privleak": leak}


def _min_k(s: ScoredAnswer, proto: Protocol) -> float:
    return float(M.min_k_score(proto.token_wise(s.token_logp).numpy(), MIN_K))


def _eval_info(
    encoder: QAEncoder, settings: EvalSettings, rows_by: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """What the numbers were computed on: checked when this log serves as a retain log."""
    return {
        "metric_version": METRIC_VERSION,
        "protocol": settings.protocol.name,
        "forget_split": settings.forget_split,
        "max_items": settings.max_items,
        "utility_items": settings.utility_items,
        "max_new_tokens": settings.max_new_tokens,
        "n_per_split": {s.prefix: len(rows_by[s.key]) for s in SPLITS},
        "system_prompt": encoder.fmt.system_prompt,
        "date_string": encoder.fmt.date_string,
        "notes": settings.notes,
        # per-item forget entries are then numbered 0.. over the items kept
        **(
            {"excluded_forget_indices": sorted(settings.exclude_forget)}
            if settings.exclude_forget
            else {}
        ),
    }


@contextlib.contextmanager
def _timed(acc: dict[str, float], key: str) -> Iterator[None]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    yield
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    acc[f"{key}_seconds"] = acc.get(f"{key}_seconds", 0.0) + time.perf_counter() - t0


def summary(res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k]["agg_value"] for k, _ in HEADLINE if k in res}


def format_table(res: dict[str, Any]) -> str:
    lines = [f"{'metric':<24} {'value':>12}  {'n':>5}  direction"]
    for key, direction in HEADLINE:
        if key not in res:
            continue
        v = res[key]["agg_value"]
        n = res[key].get("n", res[key].get("n_forget", ""))
        shown = "null" if v is None else (f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}")
        lines.append(f"{key:<24} {shown:>12}  {n!s:>5}  {direction}")
    return "\n".join(lines)
