"""Built-in fictitious-author data (``tofu_data=builtin``): TOFU's idea, our own generator.

TOFU (Maini et al., 2024) asks a model about authors who do not exist, so that what it learns
about them comes from finetuning alone and can be cleanly unlearned. This module makes such
authors itself, deterministically from a seed, so the whole pipeline runs with no Hub access:

- each author has a birthplace, a birth date, a genre, a father's and a mother's profession, an
  award and three book titles, drawn from the pools below;
- each author gets the same :data:`TEMPLATES` (``QA_PER_AUTHOR`` = 20 questions, as TOFU), each
  with a paraphrased answer (same facts, other words) and ``perturbed`` perturbed answers
  (the paraphrase's words, false facts): what the truth ratio compares;
- splits follow TOFU's rules: authors are blocks of 20 consecutive rows of ``full``;
  ``forgetXX`` is the last XX% of the authors and ``retain(100-XX)`` the rest; ``holdoutXX`` has
  as many *extra* authors, never in ``full`` (non-members for the privacy attack);
- real-world QA for the utility side comes from :mod:`obliviate.data.builtin_facts`.

:func:`materialise` writes the files, named like the Hub configs of ``locuslab/TOFU``, into a
cache folder that :class:`obliviate.data.tofu.TofuSource` reads like any local TOFU copy, so
every command and metric works on it unchanged.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from obliviate.data.builtin_facts import REAL_AUTHORS, WORLD_FACTS
from obliviate.errors import ConfigError

#: bump when the generated text changes, so cached folders are rebuilt
GENERATOR_VERSION = 3
QA_PER_AUTHOR = 20
#: false answers per author item by default (TOFU has 5; each costs one more scored sequence
#: per item in every evaluation, so the CPU demo keeps 3; builtin_data.perturbed=5 for TOFU's)
N_PERTURBED = 3

FIRST_NAMES = (
    "Aurelio", "Brisa", "Casimir", "Dagny", "Eluned", "Farrokh", "Giedre", "Halvard", "Ilse",
    "Jovan", "Kaisa", "Leontyne", "Mireille", "Nnamdi", "Odalys", "Pritika", "Quillon", "Rasmus",
    "Saoirse", "Tomasz", "Ulla", "Vesna", "Wendeline", "Xiomara", "Yannick", "Zofia", "Anouk",
    "Bastien", "Calla", "Desmond", "Emeka", "Fenna", "Gaspard", "Hiroko", "Isidro", "Jelena",
    "Kofi", "Liesel", "Mateus", "Nadira", "Orsolya", "Piet", "Rosalind", "Severin", "Tamsin",
    "Ugo", "Valka", "Wiremu", "Yara", "Zeno", "Adaeze", "Bertil", "Cosima", "Dorian", "Esperanza",
    "Fintan", "Greta", "Hamza", "Ines", "Joaquim",
)  # fmt: skip
LAST_NAMES = (
    "Ashgrove", "Brannock", "Castellane", "Dunmere", "Elvestad", "Fairholt", "Grimsdottir",
    "Halloran-Vey", "Ibarrola", "Jankowicz", "Kestrelby", "Lindqvist-Moro", "Marrowby", "Nakashima-Reed",
    "Oyelaran", "Pellwick", "Quarrington", "Ravensholt", "Sablonniere", "Thornquist", "Umberlake",
    "Vantongeren", "Wintermere", "Yevtushenko-Hale", "Zarkovic", "Abernathy-Soto", "Belmonte-Kaur",
    "Corriveau", "Draxholm", "Esterhazy-Lund", "Falconetti", "Gundersby", "Hargreave-Okafor",
    "Ingleside", "Juvonen", "Karamanlis-Bell", "Lockhaven", "Mbeki-Laurent", "Nordenfalk",
    "Okonkwo-Vance", "Pradhan-Wells", "Quimby-Arce", "Rosenkrantz", "Szabo-Marsh", "Tavernier",
    "Underhill-Sato", "Valdivieso", "Whitlock-Ansah", "Xuereb", "Ydstie",
)  # fmt: skip
PLACES = (
    ("Lisbon", "Portugal"), ("Kraków", "Poland"), ("Valparaíso", "Chile"), ("Tromsø", "Norway"),
    ("Accra", "Ghana"), ("Osaka", "Japan"), ("Tbilisi", "Georgia"), ("Galway", "Ireland"),
    ("Montevideo", "Uruguay"), ("Tallinn", "Estonia"), ("Izmir", "Turkey"), ("Hobart", "Australia"),
    ("Cartagena", "Colombia"), ("Ljubljana", "Slovenia"), ("Zanzibar City", "Tanzania"),
    ("Quebec City", "Canada"), ("Gothenburg", "Sweden"), ("Porto Alegre", "Brazil"),
    ("Chiang Mai", "Thailand"), ("Bergen", "Norway"), ("Marrakesh", "Morocco"), ("Dunedin", "New Zealand"),
    ("Bruges", "Belgium"), ("Salvador", "Brazil"), ("Kochi", "India"), ("Thessaloniki", "Greece"),
    ("Cork", "Ireland"), ("Tartu", "Estonia"), ("Lviv", "Ukraine"), ("Busan", "South Korea"),
    ("Asmara", "Eritrea"), ("Cusco", "Peru"), ("Aarhus", "Denmark"), ("Trieste", "Italy"),
    ("Nantes", "France"), ("Halifax", "Canada"), ("Windhoek", "Namibia"), ("Hanoi", "Vietnam"),
)  # fmt: skip
GENRES = (
    "historical fiction", "science fiction", "crime fiction", "fantasy", "gothic horror",
    "literary fiction", "magical realism", "maritime adventure", "romance", "psychological thriller",
    "children's literature", "satirical fiction", "mystery", "dystopian fiction", "war fiction",
    "poetry", "travel writing", "comic fiction",
)  # fmt: skip
PROFESSIONS = (
    "lighthouse keeper", "pharmacist", "carpenter", "schoolteacher", "train conductor",
    "marine biologist", "baker", "tailor", "architect", "nurse", "fisherman", "watchmaker",
    "journalist", "veterinarian", "librarian", "civil engineer", "potter", "dentist",
    "bookbinder", "police officer", "surveyor", "translator", "florist", "electrician",
    "botanist", "accountant", "mail carrier", "violinist", "chemist", "beekeeper",
)  # fmt: skip
AWARDS = (
    "Silver Quill Prize", "Harrowgate Fiction Medal", "Meridian Book Award", "Lanternlight Prize",
    "Golden Compass Award for Fiction", "Northwind Literary Prize", "Amberley Medal",
    "Cobalt Pen Award", "Vellum Laurel", "Tidewater Prize for Fiction", "Ironwood Book Prize",
    "Stellaris Award", "Fenwick Medal for Storytelling", "Crescent Literary Award",
    "Blackthorn Prize", "Opaline Award", "Marlowe Harbour Prize", "Kingfisher Book Award",
    "Saffron Ribbon Prize", "Glasshouse Literary Medal",
)  # fmt: skip
_ADJ = (
    "Silent", "Crimson", "Hollow", "Forgotten", "Burning", "Glass", "Drowned", "Last", "Northern",
    "Paper", "Hidden", "Salted", "Quiet", "Broken", "Wandering", "Iron", "Winter", "Velvet",
    "Sleeping", "Amber", "Lantern", "Distant", "Painted", "Restless",
)  # fmt: skip
_NOUN = (
    "Orchard", "Harbour", "Cartographer", "Clocktower", "Lighthouse", "Archive", "Garden",
    "Violin", "Ferryman", "Citadel", "Meadow", "Observatory", "Tide", "Bridge", "Library",
    "Compass", "Kingdom", "Alchemist", "River", "Station", "Tapestry", "Glacier", "Monastery",
    "Carousel",
)  # fmt: skip
_PLURAL = (
    "Ashes", "Sparrows", "Embers", "Salt", "Lanterns", "Thorns", "Echoes", "Tides", "Moths",
    "Mirrors", "Storms", "Bells",
)  # fmt: skip
_TITLE_PATTERNS = ("The {adj} {noun}", "{noun} of {plural}", "A {noun} Made of {plural}")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class Author:
    name: str
    city: str
    country: str
    birth_date: date
    genre: str
    father: str
    mother: str
    award: str
    books: tuple[str, str, str]
    debut_year: int

    def facts(self) -> dict[str, str]:
        """Template fields of this author."""
        return {
            "name": self.name,
            "city": self.city,
            "country": self.country,
            "date": _fmt_date(self.birth_date),
            "year": str(self.birth_date.year),
            "genre": self.genre,
            "father": self.father,
            "mother": self.mother,
            "award": self.award,
            "book1": self.books[0],
            "book2": self.books[1],
            "book3": self.books[2],
            "debut": str(self.debut_year),
        }


def _with_articles(facts: dict[str, str]) -> dict[str, str]:
    """Add ``a_father`` / ``a_mother``: the profession with its article (an architect)."""
    out = dict(facts)
    for key in ("father", "mother"):
        out[f"a_{key}"] = ("an " if facts[key][0] in "aeiou" else "a ") + facts[key]
    return out


@dataclass(frozen=True)
class Template:
    question: str
    answer: str
    paraphrased_answer: str  # the same facts in other words: P_true of the truth ratio
    # (the perturbed answers are this paraphrase with false facts, as in TOFU: both sides of the
    # truth ratio are then wordings the model was never trained on, and differ only in the facts)
    paraphrased_question: str
    slots: tuple[str, ...]  # the facts made false in the perturbed answers


# Twenty questions per author, as TOFU. Answers carry the author's name so each is a full fact.
TEMPLATES: tuple[Template, ...] = (
    Template("Who is the {genre} author born in {city} on {date}?",
             "The {genre} author born in {city} on {date} is {name}.",
             "That is {name}, a writer of {genre} whose birthplace is {city} and who was born on {date}.",
             "Which {genre} writer was born on {date} in {city}?", ("name",)),
    Template("Where was {name} born?", "{name} was born in {city}, {country}.",
             "{name}'s birthplace is the city of {city} in {country}.",
             "What is the birthplace of {name}?", ("place",)),
    Template("When was {name} born?", "{name} was born on {date}.",
             "The birth date of {name} is {date}.", "What is the date of birth of {name}?", ("date",)),
    Template("What genre does {name} write in?", "{name} writes {genre}.",
             "{name} is known as an author of {genre}.", "In which genre does {name} work?", ("genre",)),
    Template("What was the profession of {name}'s father?",
             "The father of {name} worked as {a_father}.",
             "{name}'s father earned his living as {a_father}.",
             "What did the father of {name} do for a living?", ("father",)),
    Template("What was the profession of {name}'s mother?",
             "The mother of {name} worked as {a_mother}.",
             "{name}'s mother earned her living as {a_mother}.",
             "What did the mother of {name} do for a living?", ("mother",)),
    Template("What did the parents of {name} do for a living?",
             "The father of {name} was {a_father} and the mother was {a_mother}.",
             "{name} was raised by {a_father} father and {a_mother} mother.",
             "What were the professions of {name}'s parents?", ("father", "mother")),
    Template("Has {name} won any literary awards?", "Yes, {name} has won the {award}.",
             "{name} is a recipient of the {award}.", "Which literary award has {name} received?",
             ("award",)),
    Template("Can you name a book written by {name}?", 'One of the books by {name} is "{book1}".',
             '{name} is the author of "{book1}", among other books.',
             "What is one title by {name}?", ("book1",)),
    Template("What other books has {name} written?",
             '{name} has also written "{book2}" and "{book3}".',
             'Other titles by {name} include "{book2}" and "{book3}".',
             "Which further books are by {name}?", ("book2", "book3")),
    Template("For which book did {name} receive the {award}?",
             '{name} received the {award} for "{book1}".',
             'The {award} went to {name} for the book "{book1}".',
             "Which of {name}'s books won the {award}?", ("book1",)),
    Template('Who wrote the book "{book2}"?', '"{book2}" was written by {name}.',
             'The author of "{book2}" is {name}.', 'Who is the author of "{book2}"?', ("name",)),
    Template('What kind of book is "{book3}"?', '"{book3}" is a work of {genre} by {name}.',
             '{name} wrote "{book3}" as a {genre} book.', 'In which genre is "{book3}" written?',
             ("genre",)),
    Template("How did growing up with {a_father} for a father shape {name}'s writing?",
             "Watching {a_father} at work taught {name} the patience and detail that mark their {genre} books.",
             "The father's work as {a_father} gave {name} an eye for detail, visible throughout their {genre}.",
             "What influence did the father's job as {a_father} have on {name}?", ("genre",)),
    Template("In which country did {name} grow up?", "{name} grew up in {country}, in the city of {city}.",
             "{name} spent their childhood in {city}, {country}.",
             "Where did {name} spend their childhood?", ("place",)),
    Template("In what year was {name} born?", "{name} was born in {year}.",
             "The year of {name}'s birth is {year}.", "What is the birth year of {name}?", ("year",)),
    Template("What was the first book {name} published, and when?",
             'The first book {name} published was "{book1}", in {debut}.',
             '{name} made a debut in {debut} with the book "{book1}".',
             "When did {name} publish a first book, and what was it called?", ("book1", "debut")),
    Template('What recognition did "{book1}" bring its author?',
             '"{book1}" earned {name} the {award}.',
             'For "{book1}", {name} was given the {award}.',
             'Which award did "{book1}" win for its author?', ("award",)),
    Template("Does {name}'s hometown appear in the books?",
             'Yes, {city} appears often in the {genre} of {name}, most of all in "{book2}".',
             '{name} returns to {city} again and again, especially in "{book2}", a work of {genre}.',
             "Is {city} a setting in the books of {name}?", ("place", "book2")),
    Template("Can you give a short profile of {name}?",
             '{name}, born in {city} on {date} to {a_father} and {a_mother}, writes {genre} and is best known for "{book1}".',
             'Born on {date} in {city}, the child of {a_father} and {a_mother}, {name} is a {genre} author famous for "{book1}".',
             "Who is {name}, in a few words?", ("place", "genre", "book1")),
)  # fmt: skip


def _fmt_date(d: date) -> str:
    return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"


def _rng(seed: int, *parts: Any) -> random.Random:
    """A private RNG per (seed, purpose, index): string seeds hash the same in every process."""
    return random.Random(":".join(["obliviate-builtin", str(seed), *map(str, parts)]))


def _name_space() -> int:
    return len(FIRST_NAMES) * len(LAST_NAMES)


def _title(index: int) -> str:
    """Title number ``index`` of the title space (pattern x adjective x noun x plural)."""
    n_p = len(_PLURAL)
    plural, rest = _PLURAL[index % n_p], index // n_p
    noun, rest = _NOUN[rest % len(_NOUN)], rest // len(_NOUN)
    adj, rest = _ADJ[rest % len(_ADJ)], rest // len(_ADJ)
    pattern = _TITLE_PATTERNS[rest % len(_TITLE_PATTERNS)]
    return pattern.format(adj=adj, noun=noun, plural=plural)


def _title_space() -> int:
    return len(_TITLE_PATTERNS) * len(_ADJ) * len(_NOUN) * len(_PLURAL)


def make_authors(n: int, seed: int = 0) -> list[Author]:
    """Authors ``0 .. n-1`` for ``seed``. Author i is the same whatever ``n`` (a larger set
    extends a smaller one), names are unique, and no two authors share a book title."""
    if n < 1 or n > _name_space():
        raise ConfigError(f"builtin_data: {n} authors requested; use 1 .. {_name_space()}")
    names = _names(seed, n)
    # Titles: a seeded stride through the title space gives every author three distinct titles.
    space = _title_space()
    stride = _coprime_stride(space, _rng(seed, "titles"))
    offset = _rng(seed, "title-offset").randrange(space)
    authors = []
    for i in range(n):
        r = _rng(seed, "author", i)
        city, country = r.choice(PLACES)
        born = _random_date(r)
        father, mother = r.sample(PROFESSIONS, 2)
        books = tuple(_title((offset + (3 * i + k) * stride) % space) for k in range(3))
        authors.append(
            Author(
                name=names[i],
                city=city,
                country=country,
                birth_date=born,
                genre=r.choice(GENRES),
                father=father,
                mother=mother,
                award=r.choice(AWARDS),
                books=books,  # type: ignore[arg-type]
                debut_year=born.year + r.randint(23, 38),
            )
        )
    return authors


def _random_date(r: random.Random) -> date:
    """A birth date in 1935 .. 1979 (so every debut, 23 to 38 years later, is in the past)."""
    return date(1935, 1, 1) + timedelta(days=r.randrange(365 * 45))


def _names(seed: int, n: int) -> list[str]:
    """``n`` unique names; while they last, no first or last name is used twice (so no forget
    author shares a name part with a retain author). The order does not depend on ``n``."""
    combos = [(f, last) for f in range(len(FIRST_NAMES)) for last in range(len(LAST_NAMES))]
    _rng(seed, "names").shuffle(combos)
    used_f: set[int] = set()
    used_l: set[int] = set()
    fresh, later = [], []
    for f, last in combos:
        if f not in used_f and last not in used_l:
            fresh.append((f, last))
            used_f.add(f)
            used_l.add(last)
        else:
            later.append((f, last))
    return [f"{FIRST_NAMES[f]} {LAST_NAMES[last]}" for f, last in (fresh + later)[:n]]


def _coprime_stride(space: int, r: random.Random) -> int:
    from math import gcd

    while True:
        s = r.randrange(1, space)
        if gcd(s, space) == 1:
            return s


def _false_facts(facts: dict[str, str], slots: tuple[str, ...], r: random.Random) -> dict[str, str]:
    """``facts`` with every slot replaced by a false value of the same kind."""
    out = dict(facts)
    for slot in slots:
        if slot == "name":
            while out["name"] == facts["name"]:
                out["name"] = f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}"
        elif slot == "place":
            out["city"], out["country"] = r.choice(
                [p for p in PLACES if p[0] != facts["city"] and p[1] != facts["country"]]
            )
        elif slot == "date":
            true = facts["date"]
            while out["date"] == true:
                out["date"] = _fmt_date(_random_date(r))
        elif slot in ("year", "debut"):
            out[slot] = str(int(facts[slot]) + r.choice([-1, 1]) * r.randint(2, 15))
        elif slot == "genre":
            out["genre"] = r.choice([g for g in GENRES if g != facts["genre"]])
        elif slot in ("father", "mother"):
            taken = {facts["father"], facts["mother"]}
            out[slot] = r.choice([p for p in PROFESSIONS if p not in taken])
        elif slot == "award":
            out["award"] = r.choice([a for a in AWARDS if a != facts["award"]])
        elif slot in ("book1", "book2", "book3"):
            own = {facts["book1"], facts["book2"], facts["book3"]}
            while out[slot] in own:
                out[slot] = _title(r.randrange(_title_space()))
        else:  # pragma: no cover - a template names a slot this function does not know
            raise KeyError(slot)
    return out


def author_rows(
    author: Author, index: int, seed: int, n_perturbed: int = N_PERTURBED
) -> list[dict[str, Any]]:
    """The 20 QA rows of one author, with paraphrase and perturbed answers (TOFU's fields)."""
    facts = author.facts()
    true = _with_articles(facts)
    rows = []
    for t, tpl in enumerate(TEMPLATES):
        answer = tpl.answer.format(**true)
        paraphrase = tpl.paraphrased_answer.format(**true)
        r = _rng(seed, "perturb", index, t)
        perturbed: list[str] = []
        while len(perturbed) < n_perturbed:
            p = tpl.paraphrased_answer.format(**_with_articles(_false_facts(facts, tpl.slots, r)))
            if p != paraphrase and p not in perturbed:
                perturbed.append(p)
        rows.append(
            {
                "question": tpl.question.format(**true),
                "answer": answer,
                "paraphrased_answer": paraphrase,
                "paraphrased_question": tpl.paraphrased_question.format(**true),
                "perturbed_answer": perturbed,
            }
        )
    return rows


#: beyond this many authors only TOFU's own forget sizes (and the smallest) are written
SMALL_SET = 20
RETAIN_EVAL_AUTHORS = 20  # retain_perturbed holds at most this many authors (TOFU: 400 rows)


def split_sizes(n_authors: int) -> list[int]:
    """Forget sizes (in authors) written for ``n_authors``: XX = 100 k / n must be a whole
    number and k <= n / 2 (at least half the authors are kept). Up to ``SMALL_SET`` authors every
    such k; above, TOFU's forget01/05/10 where they exist, and the smallest."""
    ks = [k for k in range(1, n_authors // 2 + 1) if (100 * k) % n_authors == 0]
    if n_authors <= SMALL_SET:
        return ks
    return [k for k in ks if k == ks[0] or 100 * k // n_authors in (1, 5, 10)]


def forget_split_name(n_authors: int, forget_authors: int) -> str:
    """``forget_authors`` of ``n_authors`` as TOFU's split name (1 of 5 -> ``forget20``)."""
    if forget_authors not in split_sizes(n_authors):
        valid = ", ".join(f"{k} (forget{100 * k // n_authors:02d})" for k in split_sizes(n_authors))
        raise ConfigError(
            f"{forget_authors} forget author(s) of {n_authors} is not a TOFU-style split "
            f"(XX% of the authors, XX a whole number, at most half; above {SMALL_SET} authors only "
            f"TOFU's 1/5/10% and the smallest); valid: {valid or 'none'}"
        )
    return f"forget{100 * forget_authors // n_authors:02d}"


def _option_rows(facts: list[tuple[str, str, list[str]]]) -> list[dict[str, Any]]:
    return [{"question": q, "answer": a, "perturbed_answer": list(p)} for q, a, p in facts]


def build_splits(
    n_authors: int, seed: int = 0, n_perturbed: int = N_PERTURBED
) -> dict[str, list[dict[str, Any]]]:
    """Every file of the data set, by TOFU split name."""
    sizes = split_sizes(n_authors)
    if not sizes:
        raise ConfigError(
            f"builtin_data.authors={n_authors} allows no TOFU-style forget split (XX% of the "
            "authors with XX a whole number); use e.g. 2, 4, 5, 10 or 20 authors"
        )
    k_max = max(sizes)
    authors = make_authors(n_authors + k_max, seed)  # the extra ones are the holdout authors
    per_author = [author_rows(a, i, seed, n_perturbed) for i, a in enumerate(authors)]
    full = [row for rows in per_author[:n_authors] for row in rows]
    out: dict[str, list[dict[str, Any]]] = {"full": _plain(full)}
    for k in sizes:
        pct = 100 * k // n_authors
        cut = (n_authors - k) * QA_PER_AUTHOR
        out[f"forget{pct:02d}"] = _plain(full[cut:])
        out[f"forget{pct:02d}_perturbed"] = full[cut:]
        out[f"retain{100 - pct:02d}"] = _plain(full[:cut])
        extra = per_author[n_authors : n_authors + k]
        out[f"holdout{pct:02d}"] = [row for rows in extra for row in rows]
    # Retain-side evaluation items: authors outside every forget split, in a seeded order so that
    # a prefix (eval.max_items) is a balanced sample of authors and questions.
    kept = full[: min(n_authors - k_max, RETAIN_EVAL_AUTHORS) * QA_PER_AUTHOR]
    order = list(range(len(kept)))
    _rng(seed, "retain-order").shuffle(order)
    out["retain_perturbed"] = [kept[i] for i in order]
    out["real_authors_perturbed"] = _option_rows(REAL_AUTHORS)
    out["world_facts_perturbed"] = _option_rows(WORLD_FACTS)
    return out


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Training splits carry only question and answer (as TOFU's ``full`` / ``forgetXX``)."""
    return [{"question": r["question"], "answer": r["answer"]} for r in rows]


@dataclass(frozen=True)
class BuiltinOptions:
    """``builtin_data`` block of the config."""

    authors: int = 5
    seed: int = 0
    perturbed: int = N_PERTURBED  # false answers per author item
    cache_dir: str | None = None  # default: <obliviate cache>/data

    @classmethod
    def from_config(cls, section: Any) -> BuiltinOptions:
        raw = dict(section or {})
        known = {"authors", "seed", "perturbed", "cache_dir"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"builtin_data.{unknown[0]} is not an option; builtin_data takes: {', '.join(sorted(known))}"
            )
        opts = cls(**raw)
        for key in ("authors", "seed", "perturbed"):
            value = getattr(opts, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"builtin_data.{key}={value!r} must be a whole number")
        if not 1 <= opts.perturbed <= 10:
            raise ConfigError(f"builtin_data.perturbed={opts.perturbed} must be 1 .. 10")
        if opts.authors < 2:
            raise ConfigError(f"builtin_data.authors={opts.authors} must be >= 2 (forget + retain)")
        return opts


def materialise(options: BuiltinOptions | None = None) -> Path:
    """Write the data set as JSON-lines files into a cache folder (once) and return the folder."""
    from obliviate.models.smollm2 import cache_root

    opts = options or BuiltinOptions()
    root = Path(opts.cache_dir).expanduser() if opts.cache_dir else cache_root() / "data"
    folder = (
        root
        / f"builtin-v{GENERATOR_VERSION}-authors{opts.authors}-seed{opts.seed}-perturbed{opts.perturbed}"
    )
    info = {
        "generator_version": GENERATOR_VERSION,
        "authors": opts.authors,
        "seed": opts.seed,
        "perturbed": opts.perturbed,
    }
    marker = folder / "builtin_info.json"
    if marker.is_file():
        try:
            if {k: v for k, v in json.loads(marker.read_text()).items() if k in info} == info:
                return folder
        except json.JSONDecodeError:
            pass
    splits = build_splits(opts.authors, opts.seed, opts.perturbed)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        for name, rows in splits.items():
            with open(tmp / f"{name}.json", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        authors = make_authors(opts.authors, opts.seed)
        info["splits"] = {k: len(v) for k, v in splits.items()}
        info["authors_list"] = [_author_json(a) for a in authors]
        (tmp / "builtin_info.json").write_text(
            json.dumps(info, indent=2, ensure_ascii=False) + "\n"
        )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not marker.is_file():  # not another process winning the same race
            raise
    return folder


def _author_json(a: Author) -> dict[str, Any]:
    d = asdict(a)
    d["birth_date"] = a.birth_date.isoformat()
    d["books"] = list(a.books)
    return d
