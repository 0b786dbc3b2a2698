"""The MUSE evaluation of one model: knowmem, verbmem, the min-k% attack, privleak and
extraction strength, per item and aggregated, in open-unlearning's MUSE_EVAL.json keys.

Generation and teacher-forced scoring are the TOFU evaluation's batched passes
(:func:`obliviate.eval.scoring.greedy_generate`, :func:`obliviate.logprobs.score_encoded`),
sharded over processes the same way; only the prompts differ: no chat template, BOS + text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from obliviate.data.corpus import bos_prefix
from obliviate.data.formatting import IGNORE_INDEX, loaded_pad_id
from obliviate.eval import metrics as M
from obliviate.eval import muse_metrics as MM
from obliviate.eval import ou_metrics as OU
from obliviate.eval.scoring import clean_up_spaces, greedy_generate, is_main_process, shard_map
from obliviate.eval.suite import without_items
from obliviate.eval.tofu_eval import metric
from obliviate.logprobs import ScoredAnswer, score_encoded
from obliviate.protocol import Protocol

log = logging.getLogger("obliviate")
METRIC_VERSION = "obliviate-muse-1"

#: open-unlearning's MUSE batch sizes (its configs/eval/muse_metrics): knowmem generation,
#: verbmem generation, teacher-forced scoring (extraction strength, min-k%)
OU_BATCHES = {"knowmem": 16, "verbmem": 8, "scoring": 8}

HEADLINE = (
    ("forget_knowmem_ROUGE", "↓ lower = more forgotten"),
    ("forget_verbmem_ROUGE", "↓ lower = more forgotten"),
    ("extraction_strength", "↓ lower = more forgotten"),
    ("mia_min_k", "→ toward the retain model's AUC"),
    ("privleak", "→ near 0 is best"),
    ("retain_knowmem_ROUGE", "↑ higher is better (utility)"),
)


@dataclass
class MuseSettings:
    data_split: str
    protocol: str = "open-unlearning"
    knowmem_max_new_tokens: int = 32
    verbmem_max_new_tokens: int = 128
    max_length: int = 2048  # privleak texts and verbmem references are cut to this many tokens
    min_k: float = 0.4
    max_items: int | None = None
    batch_size: int = 8
    generation_batch_size: int = 32
    retain_logs_path: str | None = None
    muse_data: str = "hub"
    #: eval.protocol: obliviate's batches and token conventions, or open-unlearning's item for
    #: item (obliviate.protocol; ``protocol`` above is the choice of MUSE metric conventions)
    parity: Protocol = field(default_factory=Protocol)
    #: verbmem items (numbered after max_items) left out of verbmem and extraction strength:
    #: the ones a relearning attack trained on (eval.muse.exclude_forget_indices)
    exclude_forget: tuple[int, ...] = ()
    progress: bool = True
    notes: list[str] = field(default_factory=list)


class TextPrompter:
    """What ``greedy_generate`` needs of an encoder when there is no chat: the prompt's ids
    behind BOS, and EOS as the end of an answer.

    ``by_tokenizer``: the special tokens the tokenizer adds itself (``add_special_tokens``), as
    open-unlearning tokenises; a tokenizer that adds no BOS (the tiny byte model's, SmolLM2's)
    then gets none. ``mask_id``: open-unlearning's attention mask (obliviate.protocol)."""

    def __init__(self, tokenizer: Any, by_tokenizer: bool = False, mask_id: int | None = None):
        self.tokenizer = tokenizer
        self.by_tokenizer = by_tokenizer
        self.mask_id = mask_id
        self.prefix = self.prompt_ids("") if by_tokenizer else bos_prefix(tokenizer)
        self.eot_id = tokenizer.eos_token_id

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]

    def prompt_ids(self, text: str) -> list[int]:
        if self.by_tokenizer:
            return self.tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]
        return self.prefix + self.ids(text)

    def decoded(self, ids: list[int]) -> str:
        """Text of ``ids`` as open-unlearning decodes it: special tokens dropped, transformers
        4's ``clean_up_tokenization_spaces`` applied."""
        return clean_up_spaces(self.tokenizer.decode(ids, skip_special_tokens=True))


def evaluate_muse(
    model: torch.nn.Module,
    tokenizer: Any,
    data: dict[str, list[dict[str, Any]]],
    settings: MuseSettings,
    auc_retain: float | None,
) -> dict[str, Any]:
    """Every MUSE metric. ``data``: forget_qa, retain_qa, forget_qa_icl, retain_qa_icl,
    verbmem, privleak_forget, privleak_holdout (rows as on the Hub)."""
    was_training = model.training
    model.eval()
    try:
        proto = settings.parity
        mask_id = proto.mask_id(loaded_pad_id(tokenizer))
        pr = TextPrompter(tokenizer, proto.specials_by_tokenizer, mask_id)
        rows = dict(capped(data, settings.max_items))  # a copy: the suite's data stays whole
        rows["verbmem"] = without_items(rows["verbmem"], settings.exclude_forget)
        res = {**knowmem_metrics(model, pr, rows, settings)}
        res.update(verbmem_metrics(model, pr, rows["verbmem"], settings))
        res.update(privacy_metrics(model, pr, rows, settings, auc_retain))
        res["eval_info"] = eval_info(settings, rows)
        return res
    finally:
        model.train(was_training)


def capped(data: dict[str, list], max_items: int | None) -> dict[str, list]:
    """The first ``max_items`` of every evaluated split (in-context examples untouched)."""
    if not max_items:
        return data
    return {k: v if k.endswith("_icl") else v[:max_items] for k, v in data.items()}


def _desc(settings: MuseSettings, text: str) -> str | None:
    return text if settings.progress and is_main_process() else None


def generate(
    model: Any,
    pr: TextPrompter,
    prompts: list[str],
    max_new: int,
    settings: MuseSettings,
    what: str,
) -> list[str]:
    """Greedy continuations (not stripped: stop strings are cut first). Under
    open-unlearning's protocol in data order, in its batch size for ``what``, decoded as it
    decodes (obliviate.protocol: ``generation_per_split``, ``decoded_texts``)."""
    proto = settings.parity
    per_split = proto.generation_per_split
    return shard_map(
        lambda part: greedy_generate(
            model,
            pr,  # type: ignore[arg-type]  (duck-typed: prompt_ids, eot_id, tokenizer)
            part,
            max_new,
            OU_BATCHES[what] if per_split else settings.generation_batch_size,
            desc=_desc(settings, what),
            in_order=per_split,
            clean_up=proto.decoded_texts,
            strip=False,
        ),
        prompts,
    )


def knowmem_metrics(
    model: Any, pr: TextPrompter, rows: dict[str, list], settings: MuseSettings
) -> dict[str, Any]:
    """forget/retain_knowmem_ROUGE: ROUGE-L F1 of the answer after the split's in-context QA
    pairs, greedy ``knowmem_max_new_tokens`` tokens cut at the first stop string."""
    prompts: dict[str, list[str]] = {}
    for split in ("forget", "retain"):
        icl = [(r["question"], r["answer"]) for r in rows[f"{split}_qa_icl"]]
        prompts[split] = [MM.knowmem_prompt(icl, r["question"]) for r in rows[f"{split}_qa"]]
    gens = knowmem_generations(model, pr, prompts, settings)
    stops = MM.KNOWMEM_STOPS
    if settings.protocol == "open-unlearning":  # it also cuts at the EOS text
        stops = (pr.tokenizer.decode([pr.eot_id]), *stops)
    out = {}
    for split, split_prompts in prompts.items():
        qa = rows[f"{split}_qa"]
        strip = settings.protocol == "open-unlearning"
        cut = [MM.cut_at_stops(g, stops, strip=strip) for g in gens[split]]
        answers = [r["answer"] for r in qa]
        if settings.parity.decoded_texts:
            answers = [
                knowmem_reference(pr, p, a) for p, a in zip(split_prompts, answers, strict=True)
            ]
        out[f"{split}_knowmem_ROUGE"] = rouge_metric(
            cut, answers, [r["question"] for r in qa], settings
        )
    return out


def knowmem_generations(
    model: Any, pr: TextPrompter, prompts: dict[str, list[str]], settings: MuseSettings
) -> dict[str, list[str]]:
    """Greedy answers per split: one pooled pass over both splits (fewer, fuller batches), or
    split by split as open-unlearning runs them (``generation_per_split``)."""
    n_new = settings.knowmem_max_new_tokens
    if settings.parity.generation_per_split:
        return {s: generate(model, pr, p, n_new, settings, "knowmem") for s, p in prompts.items()}
    pooled = generate(
        model, pr, [p for ps in prompts.values() for p in ps], n_new, settings, "knowmem"
    )
    out, start = {}, 0
    for split, split_prompts in prompts.items():
        out[split] = pooled[start : start + len(split_prompts)]
        start += len(split_prompts)
    return out


def knowmem_reference(pr: TextPrompter, prompt: str, answer: str) -> str:
    """open-unlearning's knowmem ground truth: the whole conversation (prompt + answer + EOS,
    tokenised together) decoded, the decoded prompt removed, stripped."""
    full = pr.prompt_ids(prompt + answer) + [pr.eot_id]
    return pr.decoded(full).replace(pr.decoded(pr.prompt_ids(prompt)), "").strip()


def rouge_metric(
    gens: list[str], refs: list[str], inputs: list[str], settings: MuseSettings
) -> dict[str, Any]:
    scores = MM.rouge_items(gens, refs, settings.protocol)
    items = [
        {**sc, "input": i, "ground_truth": r, "generation": g}
        for sc, i, r, g in zip(scores, inputs, refs, gens, strict=True)
    ]
    return metric(MM.mean([sc["rougeL_f1"] for sc in scores]), items, rouge_type="rougeL_f1")


def verbmem_metrics(
    model: Any, pr: TextPrompter, rows: list[dict[str, Any]], settings: MuseSettings
) -> dict[str, Any]:
    """forget_verbmem_ROUGE (greedy continuation of each prompt vs ``gt``) and
    extraction_strength (teacher-forced on ``gt`` after the prompt)."""
    n_new = settings.verbmem_max_new_tokens
    prompts = [r["prompt"] for r in rows]
    gens = generate(model, pr, prompts, n_new, settings, "verbmem")
    items = [verbmem_item(pr, r, settings.max_length) for r in rows]
    proto = settings.parity
    if settings.protocol == "paper":
        refs = [paper_reference(pr, r["gt"], n_new) for r in rows]
    else:
        refs = [r["gt"].strip() for r in rows]
        if proto.decoded_texts:  # the gt's label tokens decoded, the decoded prompt removed
            refs = [
                verbmem_reference(pr, it, r["prompt"]) for it, r in zip(items, rows, strict=True)
            ]
        gens = [g.strip() for g in gens]
    out = {"forget_verbmem_ROUGE": rouge_metric(gens, refs, prompts, settings)}
    strength = OU.extraction_strength if proto.es_no_match_is_1_over_n else M.extraction_strength
    es = [
        {"score": _num(strength(proto.token_wise(s.pred_ids), proto.token_wise(s.label_ids)))}
        for s in score(model, pr, items, settings)
    ]
    out["extraction_strength"] = metric(MM.mean([v["score"] for v in es]), es)
    return out


def verbmem_reference(pr: TextPrompter, item: dict[str, list[int]], prompt: str) -> str:
    """open-unlearning's verbmem ground truth: the labelled ``gt`` tokens decoded, any
    occurrence of the decoded prompt removed, stripped."""
    gt_ids = [t for t in item["labels"] if t != IGNORE_INDEX]
    return pr.decoded(gt_ids).replace(pr.decoded(pr.prompt_ids(prompt)), "").strip()


def paper_reference(pr: TextPrompter, gt: str, n_new: int) -> str:
    """The original MUSE code's verbmem reference: ``gt`` tokenised with BOS, cut to the
    generation length (so BOS takes one of the ``n_new`` places), decoded."""
    return pr.tokenizer.decode((pr.prefix + pr.ids(gt))[:n_new], skip_special_tokens=True)


def verbmem_item(pr: TextPrompter, row: dict[str, Any], max_length: int) -> dict[str, list[int]]:
    """BOS + prompt + " " + gt, tokenised together; labels on the gt tokens only (at most
    ``max_length`` of them), as open-unlearning's completion data."""
    prompt = pr.prompt_ids(row["prompt"])
    full = pr.prompt_ids(row["prompt"] + " " + row["gt"])[: len(prompt) + max_length]
    return {"input_ids": full, "labels": [IGNORE_INDEX] * len(prompt) + full[len(prompt) :]}


def text_item(pr: TextPrompter, text: str, max_length: int) -> dict[str, list[int]]:
    """The prompter's prefix (BOS) + the text's first ``max_length`` tokens, every text token
    labelled (with no prefix, the first token predicts nothing and is left unlabelled)."""
    full = pr.prompt_ids(text)[: len(pr.prefix) + max_length]
    n_prompt = max(1, len(pr.prefix))
    return {"input_ids": full, "labels": [IGNORE_INDEX] * n_prompt + full[n_prompt:]}


def score(
    model: Any, pr: TextPrompter, items: list[dict], settings: MuseSettings
) -> list[ScoredAnswer]:
    pad = pr.tokenizer.pad_token_id
    pad = pr.eot_id if pad is None else pad
    size = OU_BATCHES["scoring"] if settings.parity.generation_per_split else settings.batch_size
    return shard_map(lambda part: score_encoded(model, part, pad, size, mask_id=pr.mask_id), items)


def privacy_metrics(
    model: Any,
    pr: TextPrompter,
    rows: dict[str, list],
    settings: MuseSettings,
    auc_retain: float | None,
) -> dict[str, Any]:
    """mia_min_k: AUC of the min-k% attack, privleak forget (members) vs holdout; privleak
    against the retain model's AUC, null with a note when there is none."""
    scores: dict[str, list[float]] = {}
    for split in ("forget", "holdout"):
        items = [text_item(pr, r["text"], settings.max_length) for r in rows[f"privleak_{split}"]]
        scored = score(model, pr, items, settings)
        scores[split] = [
            M.min_k_score(settings.parity.token_wise(s.token_logp).numpy(), settings.min_k)
            for s in scored
        ]
    auc = M.roc_auc(np.array(scores["forget"]), np.array(scores["holdout"]))
    mia = {
        "agg_value": auc,
        "auc": auc,
        "k": settings.min_k,
        **{
            split: metric(float(np.mean(v)), [{"score": s} for s in v])
            for split, v in scores.items()
        },
    }
    return {"mia_min_k": mia, "privleak": privleak_metric(auc, auc_retain, settings)}


def privleak_metric(auc: float, auc_retain: float | None, settings: MuseSettings) -> dict[str, Any]:
    if auc_retain is None:
        return metric(None, note=how_to_make_retain_log(settings))
    if auc_retain == 1.0:
        return metric(None, note="the retain log's mia_min_k is 1.0: privleak is undefined")
    return metric(M.privleak(auc, auc_retain), auc=auc, auc_retain=auc_retain)


def how_to_make_retain_log(settings: MuseSettings) -> str:
    return (
        "no retain log with mia_min_k: privleak not computed; evaluate the retrained model "
        f"(muse-bench/MUSE-{settings.data_split}_retrain, or one finetuned with train_split=retain) "
        f"with experiment=eval/muse/default data_split={settings.data_split} and pass "
        "retain_logs_path=<its MUSE_EVAL.json>"
    )


def eval_info(settings: MuseSettings, rows: dict[str, list]) -> dict[str, Any]:
    """What the numbers were computed on: checked when this log serves as a retain log."""
    return {
        "metric_version": METRIC_VERSION,
        "protocol": settings.protocol,
        "eval_protocol": settings.parity.name,
        "rouge_stemmer": settings.protocol == "open-unlearning",
        "data_split": settings.data_split,
        "muse_data": settings.muse_data,
        "max_items": settings.max_items,
        "knowmem_max_new_tokens": settings.knowmem_max_new_tokens,
        "verbmem_max_new_tokens": settings.verbmem_max_new_tokens,
        "max_length": settings.max_length,
        "stop_strings": list(MM.KNOWMEM_STOPS),
        "n_per_split": {k: len(v) for k, v in rows.items()},
        "notes": settings.notes,
        # the verbmem / extraction strength entries are then numbered 0.. over the items kept
        **(
            {"excluded_forget_indices": sorted(settings.exclude_forget)}
            if settings.exclude_forget
            else {}
        ),
    }


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else float(x)


def summary(res: dict[str, Any]) -> dict[str, Any]:
    return {k: res[k]["agg_value"] for k, _ in HEADLINE if k in res}


def format_table(res: dict[str, Any]) -> str:
    lines = [f"{'MUSE metric':<24} {'value':>10}  direction"]
    for key, direction in HEADLINE:
        v = res[key]["agg_value"] if key in res else None
        shown = "null" if v is None else f"{v:.4g}"
        lines.append(f"{key:<24} {shown:>10}  {direction}")
    return "\n".join(lines)
