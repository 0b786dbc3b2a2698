"""TOFU splits: loading (Hugging Face Hub or a local folder of JSON lines) and validation.

TOFU (Maini et al., 2024, arXiv 2401.06121) has 200 fictitious authors x 20 QA pairs = 4000
rows in ``full``. ``forgetXX`` is the last XX% of the authors and ``retain(100-XX)`` the rest,
so a forget/retain pair must be author-disjoint and together make up ``full``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError
from obliviate.utils.io import read_json_lines

HUB_DATASET = "locuslab/TOFU"
BUILTIN = "builtin"  # tofu_data=builtin: obliviate's own generated fictitious authors
QA_PER_AUTHOR = 20
N_AUTHORS = 200

_FORGET = re.compile(r"^forget(\d\d)$")
_RETAIN = re.compile(r"^retain(\d\d)$")
_HOLDOUT = re.compile(r"^holdout(\d\d)$")
# Splits the evaluation reads besides forgetXX_perturbed / holdoutXX.
EVAL_SPLITS = ("retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


def split_percent(name: str, kind: str) -> int:
    """``forget10`` -> 10. Raises a ConfigError naming the bad split otherwise."""
    pattern = {"forget": _FORGET, "retain": _RETAIN, "holdout": _HOLDOUT}[kind]
    m = pattern.match(str(name))
    if not m or not 0 < int(m.group(1)) < 100:
        examples = {
            "forget": "forget01, forget05, forget10",
            "retain": "retain99, retain95, retain90",
            "holdout": "holdout01, holdout05, holdout10",
        }[kind]
        raise ConfigError(
            f"{kind}_split={name!r} is not a TOFU {kind} split; use one of {examples}"
        )
    return int(m.group(1))


def check_split_pair(forget_split: str, retain_split: str) -> None:
    """Name-level check, done before anything is loaded: forgetXX pairs with retain(100-XX)."""
    f = split_percent(forget_split, "forget")
    r = split_percent(retain_split, "retain")
    if f + r != 100:
        raise ConfigError(
            f"forget_split={forget_split} and retain_split={retain_split} do not complement each other "
            f"({f}% + {r}% of the authors != 100%): {forget_split} pairs with retain{100 - f:02d}"
        )


def check_holdout(forget_split: str, holdout_split: str | None) -> None:
    if holdout_split in (None, "", "null"):
        return
    f = split_percent(forget_split, "forget")
    h = split_percent(holdout_split, "holdout")
    if f != h:
        raise ConfigError(
            f"holdout_split={holdout_split} does not match forget_split={forget_split}; "
            f"use holdout_split=holdout{f:02d}"
        )


@dataclass(frozen=True)
class TofuSource:
    """Where TOFU comes from: a Hub dataset id (default) or a local folder of ``<split>.json``."""

    location: str = HUB_DATASET

    @classmethod
    def from_config(cls, cfg: Any) -> TofuSource:
        """The source a config's ``tofu_data`` names. ``tofu_data=builtin`` is the data set
        obliviate generates itself (``builtin_data`` options, :mod:`obliviate.data.builtin`),
        written once to a cache folder and then read like any local TOFU copy."""
        location = str(cfg.tofu_data)
        if location == BUILTIN:
            from obliviate.data import builtin

            options = builtin.BuiltinOptions.from_config(cfg.get("builtin_data"))
            return cls(str(builtin.materialise(options)))
        return cls(location)

    @property
    def is_local(self) -> bool:
        return Path(self.location).expanduser().is_dir() or self.location.startswith(
            (".", "/", "~")
        )

    def path_of(self, split: str) -> Path | None:
        root = Path(self.location).expanduser()
        for suffix in (".json", ".jsonl"):
            if (root / f"{split}{suffix}").is_file():
                return root / f"{split}{suffix}"
        return None

    def check_folder(self, splits: list[str]) -> None:
        """For a local folder: fail before model loading if a needed file is missing."""
        if not self.is_local:
            return
        root = Path(self.location).expanduser()
        if not root.is_dir():
            raise ConfigError(
                f"tofu_data={self.location!r} is not a folder; pass a folder of TOFU JSON-lines files "
                f"or the Hub id {HUB_DATASET}"
            )
        missing = [s for s in splits if self.path_of(s) is None]
        if missing:
            raise ConfigError(
                f"tofu_data={self.location!r} has no file for split(s) {', '.join(missing)} "
                f"(expected e.g. {root / (missing[0] + '.json')})"
            )

    def load(self, split: str) -> list[dict[str, Any]]:
        if self.is_local:
            path = self.path_of(split)
            if path is None:
                self.check_folder([split])
            return read_json_lines(path, "TOFU files are JSON lines")
        return _load_from_hub(self.location, split)


def check_source(cfg: Any, splits: list[str]) -> int | None:
    """The checks of ``tofu_data`` that need no loading and write nothing: a local folder holds a
    file for every split, the built-in set has them. Returns the number of rows of ``splits[0]``
    when its name tells it (TOFU on the Hub: 40 rows per percent; the built-in set: its authors x
    20 x XX%), else None (a local folder's files are only counted when loaded)."""
    location = str(cfg.tofu_data)
    if location == BUILTIN:
        from obliviate.data import builtin

        options = builtin.BuiltinOptions.from_config(cfg.get("builtin_data"))
        n_authors = options.authors
        forget_pcts = [100 * k // n_authors for k in builtin.split_sizes(n_authors)]
        names = {"full"} | {f"forget{p:02d}" for p in forget_pcts}
        names |= {f"retain{100 - p:02d}" for p in forget_pcts}
        missing = [s for s in splits if s not in names]
        if missing:
            raise ConfigError(
                f"tofu_data=builtin with builtin_data.authors={n_authors} has no split "
                f"{', '.join(missing)}; it has {', '.join(sorted(names))}"
            )
        return nominal_rows(splits[0], n_authors * QA_PER_AUTHOR)
    source = TofuSource(location)
    if source.is_local:
        source.check_folder(splits)
        return None
    return nominal_rows(splits[0], N_AUTHORS * QA_PER_AUTHOR)


def nominal_rows(split: str, n_full: int) -> int | None:
    """Rows of a TOFU-style split of a data set of ``n_full`` rows, from its name."""
    if split == "full":
        return n_full
    m = _FORGET.match(split) or _RETAIN.match(split)
    return n_full * int(m.group(1)) // 100 if m else None


def _load_from_hub(dataset_id: str, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split, split="train")
    except Exception as e:  # network, auth, unknown config: all need the same advice
        raise ConfigError(
            f"could not load split {split!r} of {dataset_id!r} from the Hugging Face Hub ({type(e).__name__}: {e}); "
            "without Hub access pass tofu_data=<folder of TOFU JSON-lines files>"
        ) from e
    return [dict(r) for r in ds]


def validate_rows(
    rows: list[dict[str, Any]], split: str, fields: tuple[str, ...] = ("question", "answer")
) -> None:
    if not rows:
        raise ConfigError(f"split {split!r} is empty")
    for i, row in enumerate(rows):
        for key in fields:
            if key not in row:
                raise ConfigError(
                    f"split {split!r} row {i} has no {key!r} field (fields: {sorted(row)})"
                )
            value = row[key]
            if key == "perturbed_answer":
                if (
                    not isinstance(value, list)
                    or not value
                    or not all(isinstance(v, str) and v.strip() for v in value)
                ):
                    raise ConfigError(
                        f"split {split!r} row {i}: 'perturbed_answer' must be a non-empty list of strings"
                    )
            elif not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    f"split {split!r} row {i}: {key!r} is empty; every TOFU item needs a non-empty {key}"
                )


def author_of(rows_full: list[dict[str, Any]]) -> dict[str, int]:
    """Question text -> author index, from ``full`` (authors are blocks of 20 consecutive rows)."""
    return {row["question"]: i // QA_PER_AUTHOR for i, row in enumerate(rows_full)}


def check_disjoint(
    forget: list[dict], retain: list[dict], full: list[dict] | None, names: tuple[str, str]
) -> None:
    """Data-level check: no author in both splits, and together they make up ``full``."""
    f_name, r_name = names
    shared_q = {r["question"] for r in forget} & {r["question"] for r in retain}
    if shared_q:
        raise ConfigError(
            f"{f_name} and {r_name} share {len(shared_q)} question(s), e.g. {next(iter(shared_q))!r}"
        )
    if full is None:
        return
    authors = author_of(full)
    fa = {authors.get(r["question"]) for r in forget}
    ra = {authors.get(r["question"]) for r in retain}
    both = (fa & ra) - {None}
    if both:
        raise ConfigError(
            f"{f_name} and {r_name} share author(s) {sorted(both)[:5]}: an author must be wholly forgotten or kept"
        )
    if len(forget) + len(retain) != len(full):
        raise ConfigError(
            f"{f_name} ({len(forget)} rows) + {r_name} ({len(retain)} rows) != full ({len(full)} rows): "
            "the retain split must be the complement of the forget split"
        )
