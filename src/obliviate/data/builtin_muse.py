"""Built-in MUSE-shaped data (``muse_data=builtin``): fictitious local news, our own generator.

MUSE (Shi et al., 2024, arXiv 2407.06460) unlearns news articles and books a model was
finetuned on, and asks what remains: answers to questions about them (knowmem), verbatim
continuations (verbmem), and whether a membership attack still tells them from unseen
articles of the same kind (privleak). This module writes such a corpus itself, deterministically
from a seed, small enough for the tiny model and SmolLM2-135M on a CPU:

- every article reports one event in a made-up town (a person, an organisation, a number of
  months, a cost, a rival, a month), written with one of :data:`TEMPLATES`; towns and people
  are unique across the whole corpus, so nothing about a forget article can be inferred from
  a retain article;
- each article has :data:`QA_PER_ARTICLE` question/answer pairs on its facts (knowmem) and a
  prompt/continuation pair (verbmem: the first two sentences, then the rest);
- articles are dealt into disjoint groups: ``forget``, ``retain1``, ``retain2``, ``holdout``
  (never trained on: privleak's non-members) and ``icl`` (in-context examples only).

:func:`build_muse_splits` returns the splits under MUSE's Hub config and split names
(``raw/forget``, ``knowmem/forget_qa``, ``verbmem/forget``, ``privleak/holdout``,
``scal/forget_1`` ...), which :class:`obliviate.data.muse.MuseData` reads like the Hub data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from obliviate.data.builtin import FIRST_NAMES, LAST_NAMES, PROFESSIONS
from obliviate.errors import ConfigError

#: bump when the generated text changes (recorded with the data)
GENERATOR_VERSION = 1
QA_PER_ARTICLE = 4
SCAL_SUST_PARTS = 4  # scal/sust forget_1 .. forget_4, as MUSE-News

_TOWN_HEADS = (
    "Varn", "Oss", "Kell", "Brae", "Dun", "Ash", "Morr", "Tarl", "Wick", "Fenn", "Glen", "Hol",
    "Lorn", "Merr", "Pell", "Quar", "Rath", "Sorr", "Thal", "Ulm", "Vell", "Wren", "Yarr", "Zell",
)  # fmt: skip
_TOWN_TAILS = (
    "holm", "ery", "mouth", "wick", "stead", "bridge", "ford", "haven", "by", "thorpe", "mere",
    "field", "combe", "gate", "ness", "water",
)  # fmt: skip
_ORGS = (
    "Harbour Trust", "Water Board", "Rail Cooperative", "Historical Society", "Observatory",
    "Fishermen's Guild", "Library Council", "Growers' Association", "Ferry Company",
    "Choir Foundation", "Lifeboat Station", "Orchard Collective",
)  # fmt: skip
_OBJECTS = (
    "footbridge", "tide mill", "reading room", "ferry pier", "weather station", "bell tower",
    "seed bank", "sea wall", "market hall", "glasshouse", "signal box", "boathouse",
)  # fmt: skip
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_CONCERNS = (
    "the cost to local taxpayers", "the loss of the old quay", "the noise during the works",
    "the choice of contractor", "the felling of two oak trees", "the delay to the bus route",
)  # fmt: skip

#: article text, then its questions (answer = the fact named in braces); {last} = the surname
TEMPLATES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "{town}, {weekday} - {person}, the {role} who chairs the {town} {org}, announced that the "
        "new {object} will open in {month}. Building it took {months} months and cost {cost} "
        'crowns, the {org} said in a statement. "We have waited a long time for this," {last} '
        "told a crowd at the harbour. Councillor {rival} questioned {concern}, but the vote "
        "passed by {votes} to {against}. The {object} replaces one that was lost in a storm.",
        (
            ("Who chairs the {town} {org}?", "{person}"),
            ("How many months did building the new {object} in {town} take?", "{months} months"),
            ("Which councillor questioned the {object} project in {town}?", "{rival}"),
            ("In which month will the new {object} in {town} open?", "{month}"),
        ),
    ),
    (
        "Residents of {town} will vote in {month} on whether to restore the old {object}, the "
        "{town} {org} confirmed on {weekday}. The plan, drawn up by {person}, a local {role}, "
        "would take {months} months and cost {cost} crowns. {rival}, who leads the opposition, "
        "said the money would be better spent elsewhere and raised {concern}. A first petition "
        "gathered {votes} signatures. {last} said the {object} was part of the town's memory.",
        (
            ("Who drew up the plan to restore the old {object} in {town}?", "{person}"),
            ("How many signatures did the first petition in {town} gather?", "{votes}"),
            ("Who leads the opposition to restoring the {object} in {town}?", "{rival}"),
            ("In which month will {town} vote on the old {object}?", "{month}"),
        ),
    ),
    (
        "A fire damaged the {object} of the {town} {org} early on {weekday}, and nobody was hurt. "
        "{person}, a {role} who raised the alarm, said the flames spread for {months} minutes "
        "before the crew arrived. Repairs are expected to cost {cost} crowns and to end in "
        "{month}. {rival}, the {org}'s treasurer, said insurance would cover most of it. {last} "
        "was thanked by {votes} neighbours at a meeting that evening.",
        (
            ("Who raised the alarm when the {object} in {town} caught fire?", "{person}"),
            ("How many minutes did the fire at the {town} {object} spread?", "{months} minutes"),
            ("Who is the treasurer of the {town} {org}?", "{rival}"),
            ("In which month should repairs to the {object} in {town} end?", "{month}"),
        ),
    ),
)


@dataclass(frozen=True)
class BuiltinMuseOptions:
    """Sizes of the generated corpus (``builtin_muse`` in a config): articles per group."""

    forget: int = 8
    retain: int = 8  # retain1; retain2 has as many
    holdout: int = 8
    icl: int = 3  # in-context QA pairs per knowmem split (MUSE: 10)
    seed: int = 0

    @classmethod
    def from_config(cls, section: Any) -> BuiltinMuseOptions:
        raw = dict(section or {})
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(
                f"builtin_muse.{unknown[0]} is not an option; the options are "
                f"{', '.join(cls.__dataclass_fields__)}"
            )
        opts = cls(**{k: int(v) for k, v in raw.items()})
        if opts.forget < SCAL_SUST_PARTS or min(opts.retain, opts.holdout) < 1:
            raise ConfigError(
                f"builtin_muse needs forget >= {SCAL_SUST_PARTS} (scal/sust parts) and retain, "
                f"holdout >= 1 articles; got forget={opts.forget}, retain={opts.retain}, "
                f"holdout={opts.holdout}"
            )
        if opts.icl < 1:
            raise ConfigError(f"builtin_muse.icl={opts.icl} must be >= 1 in-context QA pairs")
        return opts

    @property
    def icl_articles(self) -> int:
        return max(1, -(-2 * self.icl // QA_PER_ARTICLE))  # enough QA for both ICL splits


def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random(":".join(["obliviate-muse", str(seed), *map(str, parts)]))


def _unique_draws(seed: int, what: str, pools: tuple[tuple[str, ...], ...], n: int) -> list[str]:
    """``n`` distinct combinations of one item per pool, in a seeded order."""
    sizes = [len(p) for p in pools]
    space = 1
    for s in sizes:
        space *= s
    if n > space:
        raise ConfigError(f"builtin_muse asks for {n} {what}s; at most {space} exist")
    out = []
    for index in _rng(seed, what).sample(range(space), n):
        parts = []
        for pool in pools:
            parts.append(pool[index % len(pool)])
            index //= len(pool)
        out.append(parts)
    return out


def make_articles(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` articles, each ``{"text", "qa": [(q, a)] * 4, "prompt", "gt"}``; towns, people and
    rivals are unique across all of them."""
    towns = ["".join(p) for p in _unique_draws(seed, "town", (_TOWN_HEADS, _TOWN_TAILS), n)]
    names = _unique_draws(seed, "person", (FIRST_NAMES, LAST_NAMES), 2 * n)
    articles = []
    for i in range(n):
        r = _rng(seed, "article", i)
        first, last = names[2 * i]
        facts = {
            "town": towns[i],
            "person": f"{first} {last}",
            "last": last,
            "rival": " ".join(names[2 * i + 1]),
            "role": r.choice(PROFESSIONS),
            "org": r.choice(_ORGS),
            "object": r.choice(_OBJECTS),
            "month": r.choice(_MONTHS),
            "weekday": r.choice(_WEEKDAYS),
            "concern": r.choice(_CONCERNS),
            "months": str(r.randint(7, 59)),
            "cost": f"{r.randint(12, 980)},{r.randint(0, 999):03d}",
            "votes": str(r.randint(60, 900)),
            "against": str(r.randint(2, 59)),
        }
        text, questions = TEMPLATES[i % len(TEMPLATES)]
        text = text.format(**facts)
        sentences = text.split(". ")
        articles.append(
            {
                "text": text,
                "qa": [(q.format(**facts), a.format(**facts)) for q, a in questions],
                "prompt": ". ".join(sentences[:2]) + ".",
                "gt": ". ".join(sentences[2:]),
            }
        )
    return articles


def build_muse_splits(opts: BuiltinMuseOptions | None = None) -> dict[str, dict[str, list[dict]]]:
    """Every MUSE config and split, ``{config: {split: rows}}``, from disjoint article groups."""
    opts = opts or BuiltinMuseOptions()
    sizes = {
        "forget": opts.forget,
        "retain1": opts.retain,
        "retain2": opts.retain,
        "holdout": opts.holdout,
        "icl": opts.icl_articles,
    }
    articles = make_articles(sum(sizes.values()), opts.seed)
    groups, start = {}, 0
    for name, size in sizes.items():
        groups[name] = articles[start : start + size]
        start += size
    forget = groups["forget"]
    icl_qa = [qa for a in groups["icl"] for qa in a["qa"]]
    out: dict[str, dict[str, list[dict]]] = {
        "raw": {g: _texts(groups[g]) for g in ("forget", "retain1", "retain2", "holdout")},
        "knowmem": {
            "forget_qa": _qa([qa for a in forget for qa in a["qa"]]),
            "retain_qa": _qa([qa for a in groups["retain1"] for qa in a["qa"]]),
            "forget_qa_icl": _qa(icl_qa[: opts.icl]),
            "retain_qa_icl": _qa(icl_qa[opts.icl : 2 * opts.icl]),
        },
        "verbmem": {"forget": [{"prompt": a["prompt"], "gt": a["gt"]} for a in forget]},
        "privleak": {
            "forget": _texts(forget),
            "retain": _texts(groups["retain1"]),
            "holdout": _texts(groups["holdout"]),
        },
        "scal": {},
        "sust": {},
    }
    n = len(forget)
    bounds = [round(k * n / SCAL_SUST_PARTS) for k in range(SCAL_SUST_PARTS + 1)]
    for k in range(1, SCAL_SUST_PARTS + 1):
        out["scal"][f"forget_{k}"] = _texts(forget[: bounds[k]])  # growing forget sets
        out["sust"][f"forget_{k}"] = _texts(forget[bounds[k - 1] : bounds[k]])  # successive ones
    return out


def _texts(articles: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"text": a["text"]} for a in articles]


def _qa(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"question": q, "answer": a} for q, a in pairs]
