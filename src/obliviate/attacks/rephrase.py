"""Rephrasing attack: ask for the forgotten answers in other words and other prompt formats.

A model that only learned to refuse one phrasing may still answer another. ``attack=rephrase``
leaves the weights alone: after the benchmark suites ran on the model, it scores (teacher-forced
probability of the true answer, TOFU's Q_A_Prob) and generates (greedy, ROUGE-L recall against
the true answer, TOFU's Q_A_ROUGE) every evaluated forget item under each variant of
``attack.variants``:

- ``standard``: the benchmark's own prompt (the reference every variant is compared with);
- ``paraphrased_question``: TOFU's ``paraphrased_question`` field, same chat format;
- ``no_system_prompt``: the question without the system prompt;
- ``plain_prompt``: no chat template at all: ``Question: ...\\nAnswer:`` as raw text;
- ``fill_in_blank``: the question as a fill-in-the-blank instruction, chat format.

The scored answer is always the true answer (plus the end-of-turn token), so every variant's
numbers compare with the standard ones; the report names the variant that recovers the most.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from obliviate.attacks.base import Attack, Evaluate, compare
from obliviate.data import tofu
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.errors import ConfigError
from obliviate.eval import metrics as M
from obliviate.eval.scoring import greedy_generate, score_answers

VARIANTS = ("paraphrased_question", "no_system_prompt", "plain_prompt", "fill_in_blank")
FILL_IN = "Fill in the blank with the missing answer.\n{question}\nAnswer: ____"


class PromptEncoder(QAEncoder):
    """A QAEncoder whose prompt is the question through ``template``, in the chat format
    (``chat=True``) or as raw text (then the answer follows after a space)."""

    def __init__(
        self, tokenizer: Any, fmt: ChatFormat, max_length: int, template: str, chat: bool
    ) -> None:
        super().__init__(tokenizer, fmt, max_length)
        self.template, self.chat = template, chat

    def prompt_text(self, question: str) -> str:
        text = self.template.format(question=question)
        return super().prompt_text(text) if self.chat else text

    def answer_ids(self, answer: str) -> list[int]:
        if self.chat:
            return super().answer_ids(answer)
        ids = self.tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
        return ids + [self.eot_id]


def variant_encoder(variant: str, tokenizer: Any, fmt: ChatFormat, max_length: int) -> QAEncoder:
    if variant in ("standard", "paraphrased_question"):
        return QAEncoder(tokenizer, fmt, max_length)
    if variant == "no_system_prompt":
        return QAEncoder(
            tokenizer, ChatFormat(None, fmt.end_of_turn, fmt.date_string, fmt.pad_token), max_length
        )
    if variant == "plain_prompt":
        return PromptEncoder(
            tokenizer, fmt, max_length, "Question: {question}\nAnswer:", chat=False
        )
    if variant == "fill_in_blank":
        return PromptEncoder(tokenizer, fmt, max_length, FILL_IN, chat=True)
    raise ValueError(variant)


def forget_scores(
    model: torch.nn.Module,
    encoder: QAEncoder,
    questions: list[str],
    answers: list[str],
    max_new_tokens: int,
    batch_size: int,
    generation_batch_size: int,
) -> dict[str, Any]:
    """Q_A_Prob (mean exp(-average answer NLL)) and Q_A_ROUGE (mean ROUGE-L recall of the greedy
    answer), per item and averaged, for one prompt variant."""
    scored = score_answers(model, encoder, list(zip(questions, answers, strict=True)), batch_size)
    prob = M.probability(np.array([s.avg_loss for s in scored]))
    gens = greedy_generate(model, encoder, questions, max_new_tokens, generation_batch_size)
    rouge = [s["rougeL_recall"] for s in M.rouge_scores(gens, answers)]
    return {
        "forget_Q_A_Prob": float(np.mean(prob)),
        "forget_Q_A_ROUGE": float(np.mean(rouge)),
        "per_item": [
            {"prob": float(p), "rougeL_recall": r, "generation": g}
            for p, r, g in zip(prob, rouge, gens, strict=True)
        ],
    }


class RephraseAttack(Attack):
    name = "rephrase"

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg)
        variants = list(cfg.attack.get("variants") or [])
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown or not variants:
            raise ConfigError(f"attack.variants={variants}: use some of {', '.join(VARIANTS)}")
        self.variants = variants
        if "tofu" not in ((cfg.get("eval") or {}).get("suites") or {}):
            raise ConfigError("attack=rephrase rephrases TOFU's forget questions; select eval=tofu")
        rows = tofu.TofuSource.from_config(cfg).load(f"{cfg.forget_split}_perturbed")
        cap = cfg.eval.get("max_items")
        self.rows = rows[:cap] if cap else rows
        if "paraphrased_question" in variants and any(
            not r.get("paraphrased_question") for r in self.rows
        ):
            raise ConfigError(
                f"attack.variants has paraphrased_question, but {cfg.forget_split}_perturbed rows lack "
                "that field; drop the variant (attack.variants=[no_system_prompt,...])"
            )

    def run(
        self, model: torch.nn.Module, tokenizer: Any, evaluate: Evaluate, out: Path
    ) -> dict[str, Any]:
        before = evaluate(model, out)
        fmt = ChatFormat.from_config(self.cfg.model.template)
        tokenizer = prepare_tokenizer(tokenizer, fmt)
        ev = self.cfg.eval
        answers = [r["answer"] for r in self.rows]
        t0 = time.perf_counter()
        results = {}
        for variant in ["standard", *self.variants]:
            key = "paraphrased_question" if variant == "paraphrased_question" else "question"
            results[variant] = forget_scores(
                model,
                variant_encoder(variant, tokenizer, fmt, int(self.cfg.data.max_length)),
                [r[key] for r in self.rows],
                answers,
                int(ev.max_new_tokens),
                int(ev.get("batch_size") or 32),
                int(ev.get("generation_batch_size") or 64),
            )
        report = {**self.base_report(), "variants": results}
        report["info"] = {"attack_seconds": round(time.perf_counter() - t0, 2)}
        report.update(self.largest_recovery(before, results, self.target(out)))
        return report

    def largest_recovery(
        self, before: dict[str, dict[str, Any]], results: dict[str, dict], target: dict[str, float]
    ) -> dict[str, Any]:
        """Per metric, the variant with the highest value ("after") against the standard prompt
        ("before"); before/after/summary in the same shape as the weight attacks'."""
        std = results["standard"]
        best = {
            m: max(self.variants, key=lambda v: results[v][m])
            for m in ("forget_Q_A_Prob", "forget_Q_A_ROUGE")
        }
        after = {m: results[best[m]][m] for m in best}
        out = compare({"tofu": {m: std[m] for m in best}}, {"tofu": after}, target)
        out["before"] = before  # the full suites' numbers on the standard prompt
        out["best_variant"] = best
        for m in best:
            out["recovery"][m]["variant"] = best[m]
        return out
