"""MUSE's metric pieces that TOFU does not have: pure functions, no model calls.

MUSE (Shi et al., 2024, arXiv 2407.06460) scores greedy generations with ROUGE-L F1: answers
to questions behind in-context examples (knowmem), continuations of article openings (verbmem).
ROUGE, the min-k% score, the AUC and privleak are :mod:`obliviate.eval.metrics`'s.

Two protocols, named in every MUSE_EVAL.json:

- ``open-unlearning`` (default; the numbers users compare with): ROUGE with the Porter stemmer;
  the verbmem reference is the whole ``gt``; a generation is cut at the first stop string or
  the end-of-sequence text and stripped.
- ``paper`` (github.com/swj0419/muse_bench): ROUGE without stemming; the verbmem reference is
  ``gt`` cut to the generation length (its first ``max_new_tokens`` tokens counted with BOS, as
  the original tokenises it); a generation is cut at the first stop string.

Both report scores in [0, 1] (the paper's tables multiply by 100). privleak is the same in both:
the paper's AUC is 1 - ours (it labels holdout as the positive class), which its formula undoes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from obliviate.eval import metrics as M

if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer

PROTOCOLS = ("open-unlearning", "paper")
#: where a knowmem answer ends (MUSE's and open-unlearning's stop strings)
KNOWMEM_STOPS = ("\n\n", "\nQuestion", "Question:")


def knowmem_prompt(icl: Sequence[tuple[str, str]], question: str) -> str:
    """The in-context QA pairs as ``Question: q\\nAnswer: a\\n\\n``, then the question, ending
    in ``Answer: `` for the model to continue (BOS is added by the caller)."""
    shots = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in icl)
    return f"{shots}Question: {question}\nAnswer: "


def cut_at_stops(text: str, stops: Sequence[str], strip: bool = True) -> str:
    """``text`` up to the earliest occurrence of any stop string (empty ones ignored)."""
    cut = len(text)
    for stop in stops:
        if stop and stop in text:
            cut = min(cut, text.index(stop))
    return text[:cut].strip() if strip else text[:cut]


@functools.cache
def rouge_scorer(stemmer: bool) -> RougeScorer:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rouge1", "rougeL"], use_stemmer=stemmer)


def rouge_items(
    generations: Sequence[str], references: Sequence[str], protocol: str
) -> list[dict[str, float]]:
    """Per-item ``rougeL_f1`` (MUSE's score), ``rougeL_recall`` and ``rouge1_recall``."""
    check_protocol(protocol)
    return M.rouge_scores(generations, references, rouge_scorer(protocol == "open-unlearning"))


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"MUSE protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    return protocol


def mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None
