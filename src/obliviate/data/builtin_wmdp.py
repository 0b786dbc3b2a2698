"""Built-in WMDP stand-in (``wmdp_data=builtin``): 4-choice questions and a forget/retain corpus
pair that obliviate generates itself, so RMU -> lm-eval runs offline and on a CPU.

WMDP (Li et al., 2024) measures hazardous knowledge as 4-choice accuracy, with MMLU beside it for
general capability; RMU unlearns from a forget corpus of raw text while a retain corpus keeps
the rest. The stand-in keeps that shape with harmless facts a small instruct model already knows:

- ``builtin_hazard``: who wrote which classic book (the "hazard" domain to forget), from
  :data:`obliviate.data.builtin_facts.REAL_AUTHORS`;
- ``builtin_retain``: general world facts (the MMLU stand-in), from ``WORLD_FACTS``;
- ``builtin_authors``: the built-in fictitious authors of :mod:`obliviate.data.builtin`
  (birthplace, genre, award, parents' professions): a model knows them only after finetuning.

Every item has WMDP's fields ``question`` / ``choices`` (4) / ``answer`` (index of the true
choice); the true answer's position is a seeded shuffle of A/B/C/D repeated, so the answer
letters are balanced and the same on every machine. The corpora state the same facts in prose,
one passage per line, laid out like the WMDP corpora files (see :mod:`obliviate.data.wmdp`).
"""

from __future__ import annotations

import random
from typing import Any

from obliviate.data.builtin import GENRES, PLACES, PROFESSIONS, make_authors
from obliviate.data.builtin_facts import REAL_AUTHORS, WORLD_FACTS

#: bump when the generated items or corpora change (the cache folder name carries it)
GENERATOR_VERSION = 2
BUILTIN_TASKS = ("builtin_hazard", "builtin_retain", "builtin_authors")
TOPICS = {
    "builtin_hazard": "literature",
    "builtin_retain": "general knowledge",
    "builtin_authors": "contemporary authors",
}
#: fictitious authors asked about in ``builtin_authors`` (4 questions each)
AUTHORS_IN_TASK = 10


def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random(":".join(["obliviate-wmdp", str(seed), *map(str, parts)]))


def answer_positions(n: int, r: random.Random) -> list[int]:
    """Where the true answer goes in each of ``n`` items: each letter equally often (+-1)."""
    at = [i % 4 for i in range(n)]
    r.shuffle(at)
    return at


def mcq_item(question: str, true: str, false: list[str], at: int) -> dict[str, Any]:
    """One WMDP-style item: the true answer at position ``at`` among the four choices."""
    if len(false) != 3 or true in false:
        raise ValueError(f"need 3 false answers different from {true!r}, got {false!r}")
    choices = false[:at] + [true] + false[at:]
    return {"question": question, "choices": choices, "answer": at}


def fact_items(facts: list[tuple[str, str, list[str]]], seed: int, tag: str) -> list[dict]:
    at = answer_positions(len(facts), _rng(seed, tag))
    return [mcq_item(q, a, list(f), at[i]) for i, (q, a, f) in enumerate(facts)]


def author_items(seed: int = 0, n_authors: int = AUTHORS_IN_TASK) -> list[dict[str, Any]]:
    """Four questions about each of the first ``n_authors`` built-in fictitious authors."""
    items = []
    at = iter(answer_positions(4 * n_authors, _rng(seed, "authors")))
    for i, a in enumerate(make_authors(n_authors, seed)):
        r = _rng(seed, "authors", i)
        others = [p for p in PROFESSIONS if p not in (a.father, a.mother)]
        cities = [c for c, _ in PLACES if c != a.city]
        asks = [
            (f"In which city was {a.name} born?", a.city, cities),
            (f"What genre does {a.name} write in?", a.genre, [g for g in GENRES if g != a.genre]),
            (f"What was the profession of {a.name}'s father?", a.father, others),
            (f"What was the profession of {a.name}'s mother?", a.mother, others),
        ]
        items += [mcq_item(q, t, r.sample(pool, 3), next(at)) for q, t, pool in asks]
    return items


def task_items(task: str, seed: int = 0) -> list[dict[str, Any]]:
    """The items of a built-in task (``BUILTIN_TASKS``)."""
    if task == "builtin_hazard":
        return fact_items(REAL_AUTHORS, seed, "hazard")
    if task == "builtin_retain":
        return fact_items(WORLD_FACTS, seed, "retain")
    if task == "builtin_authors":
        return author_items(seed)
    raise ValueError(f"unknown built-in task {task!r}; use one of {', '.join(BUILTIN_TASKS)}")


# Prose that states a fact (question + true answer) without the answer options: what a forget
# corpus holds for RMU (its activations on this text are steered away), and what the retain
# corpus holds for the facts that must survive.
_PASSAGES = (
    "{q} The answer is {a}. This is a well-known fact that students learn early on.",
    "People often ask: {q} It is {a}. Reference books agree on this without exception.",
    "A short note for the quiz: {q} Correct: {a}. Remember it, it comes up again and again.",
)


def corpus(facts: list[tuple[str, str, list[str]]]) -> list[str]:
    """One passage per line: each fact in every phrasing, facts interleaved."""
    return [p.format(q=q, a=a) for p in _PASSAGES for q, a, _ in facts]


def corpora() -> dict[str, list[str]]:
    """The forget ("hazard") and retain corpora of the built-in stand-in."""
    return {"forget": corpus(REAL_AUTHORS), "retain": corpus(WORLD_FACTS)}
