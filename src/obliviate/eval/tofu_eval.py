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
from typing import Any

import numpy as np
import torch

from obliviate.data.formatting import QAEncoder
from obliviate.eval import metrics as M
from obliviate.eval import retain_log as RL
from obliviate.eval.scoring import (
    ScoredAnswer,
    greedy_generate,
    is_main_process,
    score_answers,
    shard_map,
)

log = logging.getLogger("obliviate")
METRIC_VERSION = "obliviate-tofu-1"

# (output prefix, data key, which answer is "true" for the truth ratio, truth-ratio aggregator)
SPLITS = (
    ("forget", "forget", "paraphrased_answer", "closer_to_1"),
    ("retain", "retain", "paraphrased_answer", "true_better"),
    ("ra", "real_authors", "answer", "true_better"),
    ("wf", "world_facts", "answer", "true_better"),
)

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
    progress: bool = True
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


def _evaluate(model, encoder, data, settings, retain_log) -> dict[str, Any]:
    cap = settings.max_items
    rows_by = {k: (v[:cap] if cap else v) for k, v in data.items()}
    if settings.utility_items:
        for key in ("retain", "real_authors", "world_facts"):
            rows_by[key] = rows_by[key][: settings.utility_items]
    res: dict[str, Any] = {}
    bs = settings.batch_size

    def desc(s: str) -> str | None:
        return s if settings.progress and is_main_process() else None

    # Greedy generations (for ROUGE) of all splits in one length-sorted pool: fewer, fuller batches.
    questions = [(prefix, r["question"]) for prefix, key, _, _ in SPLITS for r in rows_by[key]]
    with _timed(settings.timings, "generation"):
        flat = shard_map(
            lambda part: greedy_generate(
                model,
                encoder,
                part,
                settings.max_new_tokens,
                settings.generation_batch_size or bs,
                desc=desc("generating"),
                stats=settings.timings,
            ),
            [q for _, q in questions],
        )
    gens_by: dict[str, list[str]] = {prefix: [] for prefix, *_ in SPLITS}
    for (prefix, _), g in zip(questions, flat, strict=True):
        gens_by[prefix].append(g)

    scored_answer: dict[str, list[ScoredAnswer]] = {}
    for prefix, key, true_key, aggregator in SPLITS:
        rows = rows_by[key]
        n = len(rows)
        k_false = len(rows[0]["perturbed_answer"])
        # One length-sorted scoring pass over every sequence of the split.
        pairs = [(r["question"], r["answer"]) for r in rows]
        if true_key != "answer":
            pairs += [(r["question"], r[true_key]) for r in rows]
        pairs += [(r["question"], p) for r in rows for p in r["perturbed_answer"]]
        with _timed(settings.timings, "scoring"):
            scored = shard_map(
                lambda part, p=prefix: score_answers(
                    model, encoder, part, bs, desc=desc(f"scoring {p}")
                ),
                pairs,
            )
        ans = scored[:n]
        true_sc = ans if true_key == "answer" else scored[n : 2 * n]
        pert_sc = scored[len(pairs) - n * k_false :]
        scored_answer[prefix] = ans

        avg_ans = np.array([s.avg_loss for s in ans])
        avg_true = np.array([s.avg_loss for s in true_sc])
        avg_false = np.array([s.avg_loss for s in pert_sc]).reshape(n, k_false)

        prob = M.probability(avg_ans)
        res[f"{prefix}_Q_A_Prob"] = {
            "agg_value": _mean([_num(p) for p in prob]),
            "value_by_index": {
                str(i): {"prob": _num(prob[i]), "avg_loss": _num(avg_ans[i])} for i in range(n)
            },
            "n": n,
        }
        if true_key != "answer":
            p_para = M.probability(avg_true)
            res[f"{prefix}_Q_A_PARA_Prob"] = {
                "agg_value": _mean([_num(p) for p in p_para]),
                "value_by_index": {
                    str(i): {"prob": _num(p_para[i]), "avg_loss": _num(avg_true[i])}
                    for i in range(n)
                },
                "n": n,
            }
        p_pert = M.probability(avg_false)  # (n, K)
        res[f"{prefix}_Q_A_PERT_Prob"] = {
            "agg_value": float(np.nanmean(p_pert)),
            "value_by_index": {
                str(i): {
                    "prob": [_num(x) for x in p_pert[i]],
                    "avg_loss": [_num(x) for x in avg_false[i]],
                }
                for i in range(n)
            },
            "n": n,
        }
        if prefix in ("ra", "wf"):
            norm = M.normalised_probability(avg_ans, avg_false)
            res[f"{prefix}_Q_A_Prob_normalised"] = {
                "agg_value": _mean([_num(x) for x in norm]),
                "value_by_index": {str(i): {"prob": _num(norm[i])} for i in range(n)},
                "n": n,
            }
        tr = M.truth_ratio(avg_true, avg_false)
        ok = ~np.isnan(tr)
        agg = (
            M.truth_ratio_closer_to_1 if aggregator == "closer_to_1" else M.truth_ratio_true_better
        )
        tr_key = "forget_truth_ratio" if prefix == "forget" else f"{prefix}_Truth_Ratio"
        res[tr_key] = {
            "agg_value": agg(tr[ok]) if ok.any() else None,
            "aggregator": aggregator,
            "value_by_index": {str(i): {"score": _num(tr[i])} for i in range(n)},
            "n": n,
        }

        # ROUGE-L recall of the greedy generations (made above, all splits pooled).
        gens = gens_by[prefix]
        truths = [r["answer"] for r in rows]
        with _timed(settings.timings, "rouge"):
            rs = M.rouge_scores(gens, truths)
        res[f"{prefix}_Q_A_ROUGE"] = {
            "agg_value": float(np.mean([r["rougeL_recall"] for r in rs])),
            "value_by_index": {
                str(i): {
                    **rs[i],
                    "input": rows[i]["question"],
                    "ground_truth": truths[i],
                    "generation": gens[i],
                }
                for i in range(n)
            },
            "n": n,
        }

    # Memorisation of the forget answers (end-of-turn excluded).
    eot = encoder.eot_id
    em, es = {}, {}
    for i, s in enumerate(scored_answer["forget"]):
        pred, lab = _answer_tokens(s, eot)
        em[str(i)] = {"score": _num(M.exact_memorization(pred, lab))}
        es[str(i)] = {"score": _num(M.extraction_strength(pred, lab))}
    n_f = len(scored_answer["forget"])
    res["exact_memorization"] = {
        "agg_value": _mean([v["score"] for v in em.values()]),
        "value_by_index": em,
        "n": n_f,
    }
    res["extraction_strength"] = {
        "agg_value": _mean([v["score"] for v in es.values()]),
        "value_by_index": es,
        "n": n_f,
    }

    # Model utility: harmonic mean of the nine retain / real-author / world-fact numbers.
    parts = {k: res[k]["agg_value"] for k in M.MODEL_UTILITY_KEYS}
    res["model_utility"] = {
        "agg_value": M.model_utility(parts) if all(v is not None for v in parts.values()) else None,
        "components": parts,
    }

    # forget_quality: KS test against the retain model's per-item forget truth ratios.
    forget_tr = np.array(
        [v["score"] for v in res["forget_truth_ratio"]["value_by_index"].values()], dtype=float
    )
    fq: dict[str, Any] = {
        "agg_value": None,
        "n": n_f,
        "retain_logs_path": settings.retain_logs_path,
    }
    if retain_log is not None:
        ref = RL.retain_truth_ratios(
            retain_log,
            settings.retain_logs_path or "?",
            settings.forget_split,
            n_f,
            settings.max_items,
        )
        ours = forget_tr[~np.isnan(forget_tr)]
        fq["agg_value"] = M.forget_quality(ours, ref[~np.isnan(ref)])
        fq["n_retain"] = int((~np.isnan(ref)).sum())
    else:
        fq["note"] = "no retain log: forget_quality not computed; " + RL.how_to_make(
            settings.model_name, settings.retain_split
        )
    res["forget_quality"] = fq

    # Privacy: min-k% membership attack, forget (members) vs holdout (non-members).
    holdout = rows_by.get("holdout")
    if holdout:
        with _timed(settings.timings, "scoring"):
            hold_sc = shard_map(
                lambda part: score_answers(model, encoder, part, bs, desc=desc("scoring holdout")),
                [(r["question"], r["answer"]) for r in holdout],
            )
        mem = np.array([M.min_k_score(s.token_logp.numpy(), 0.4) for s in scored_answer["forget"]])
        non = np.array([M.min_k_score(s.token_logp.numpy(), 0.4) for s in hold_sc])
        auc = M.roc_auc(mem, non)
        res["mia_min_k"] = {"agg_value": auc, "k": 0.4, "n_forget": len(mem), "n_holdout": len(non)}
        auc_ret = RL.retain_mia_auc(retain_log) if retain_log else None
        res["privleak"] = {
            "agg_value": M.privleak(auc, auc_ret) if auc_ret is not None else None,
            "note": None
            if auc_ret is not None
            else "needs the retain log's mia_min_k (AUC_retain)",
        }
    elif not any("holdout" in note for note in settings.notes):
        settings.notes.append(
            "no holdout split available: mia_min_k and privleak skipped (no made-up reference)"
        )

    res["eval_info"] = {
        "metric_version": METRIC_VERSION,
        "forget_split": settings.forget_split,
        "max_items": settings.max_items,
        "utility_items": settings.utility_items,
        "max_new_tokens": settings.max_new_tokens,
        "n_per_split": {prefix: len(rows_by[key]) for prefix, key, _, _ in SPLITS},
        "system_prompt": encoder.fmt.system_prompt,
        "date_string": encoder.fmt.date_string,
        "notes": settings.notes,
    }
    return res


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
