"""MUSE data (Shi et al., 2024, arXiv 2407.06460): the Hub sets ``muse-bench/MUSE-News`` and
``muse-bench/MUSE-Books``, a local copy, or obliviate's generated corpus; and MUSE's training
source (raw text: the forget and retain articles, chunked by :mod:`obliviate.data.corpus`).

``muse_data`` says where the data comes from:

- ``hub`` (default): ``muse-bench/MUSE-<data_split>`` on the Hugging Face Hub;
- ``builtin``: :mod:`obliviate.data.builtin_muse`, generated in memory, no files;
- a folder laid out as ``<folder>/<config>/<split>.jsonl`` with the Hub's config, split and
  field names (:data:`SCHEMA`), e.g. ``raw/forget.jsonl`` (``text``),
  ``knowmem/forget_qa.jsonl`` (``question``, ``answer``), ``verbmem/forget.jsonl``
  (``prompt``, ``gt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from obliviate.data.corpus import TextCorpusSource, check_text_method
from obliviate.errors import ConfigError
from obliviate.utils.io import read_json_lines

DATA_SPLITS = ("News", "Books")
HUB_PREFIX = "muse-bench/MUSE-"
HUB, BUILTIN = "hub", "builtin"

_TEXT, _QA = ("text",), ("question", "answer")
_PARTS = tuple(f"forget_{k}" for k in range(1, 5))
#: every config of the MUSE Hub sets, its splits and the fields each row must have
SCHEMA: dict[str, dict[str, tuple[str, ...]]] = {
    "raw": {"forget": _TEXT, "retain1": _TEXT, "retain2": _TEXT, "holdout": _TEXT},
    "knowmem": {"forget_qa": _QA, "retain_qa": _QA, "forget_qa_icl": _QA, "retain_qa_icl": _QA},
    "verbmem": {"forget": ("prompt", "gt")},
    "privleak": {"forget": _TEXT, "retain": _TEXT, "holdout": _TEXT},
    "scal": {p: _TEXT for p in _PARTS},
    "sust": {p: _TEXT for p in _PARTS},
}
#: finetuning splits (train_split): the target sees forget + both retain sets, the retrained
#: reference the retain sets only (MUSE's target / retrain models)
FINETUNE_SPLITS = {
    "full": ("forget", "retain1", "retain2"),
    "retain": ("retain1", "retain2"),
}


def check_data_split(name: Any) -> str:
    if str(name) not in DATA_SPLITS:
        raise ConfigError(
            f"data_split={name!r} is not a MUSE corpus; use data_split=News or data_split=Books"
        )
    return str(name)


@dataclass(frozen=True)
class MuseData:
    """Where MUSE comes from (``muse_data``) for one corpus (``data_split``)."""

    location: str
    data_split: str
    builtin: Any = None  # BuiltinMuseOptions for muse_data=builtin

    @classmethod
    def from_config(cls, cfg: Any) -> MuseData:
        location = str(cfg.get("muse_data") or HUB)
        data_split = check_data_split(cfg.get("data_split"))
        builtin = None
        if location == BUILTIN:
            from obliviate.data.builtin_muse import BuiltinMuseOptions

            builtin = BuiltinMuseOptions.from_config(cfg.get("builtin_muse"))
        return cls(location, data_split, builtin)

    @property
    def hub_id(self) -> str:
        return HUB_PREFIX + self.data_split

    @property
    def describe(self) -> str:
        if self.location == HUB:
            return self.hub_id
        return "builtin" if self.location == BUILTIN else str(Path(self.location).expanduser())

    def check(self, wanted: list[tuple[str, str]]) -> None:
        """No loading: every (config, split) is a MUSE one and, for a folder, has its file."""
        for config, split in wanted:
            if split not in SCHEMA.get(config, {}):
                known = (
                    ", ".join(SCHEMA.get(config, {})) or "none (configs: " + ", ".join(SCHEMA) + ")"
                )
                raise ConfigError(f"MUSE has no split {config}/{split}; {config} has {known}")
        if self.location in (HUB, BUILTIN):
            return
        root = Path(self.location).expanduser()
        if not root.is_dir():
            raise ConfigError(
                f"muse_data={self.location!r} is not a folder; pass muse_data=hub, muse_data=builtin "
                "or a folder of <config>/<split>.jsonl files"
            )
        missing = [f"{c}/{s}.jsonl" for c, s in wanted if not (root / c / f"{s}.jsonl").is_file()]
        if missing:
            raise ConfigError(
                f"muse_data={self.location!r} has no {missing[0]}"
                + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
                + "; the folder holds <config>/<split>.jsonl files named as on the Hub"
            )

    def load(self, config: str, split: str) -> list[dict[str, Any]]:
        """Rows of one split, validated against :data:`SCHEMA`."""
        self.check([(config, split)])
        if self.location == BUILTIN:
            from obliviate.data.builtin_muse import build_muse_splits

            rows = build_muse_splits(self.builtin)[config][split]
        elif self.location == HUB:
            rows = _load_from_hub(self.hub_id, config, split)
        else:
            rows = read_json_lines(Path(self.location).expanduser() / config / f"{split}.jsonl")
        validate_rows(rows, config, split)
        return rows


def as_rows(table: Any) -> list[dict[str, Any]]:
    """A ``datasets.Dataset`` (or any table with ``column_names``) as a list of plain dicts.
    Newer ``datasets`` return a Column object for ``ds[name]``, not a list: convert each."""
    if isinstance(table, list):
        return [dict(r) for r in table]
    columns = {name: list(table[name]) for name in table.column_names}
    n = len(next(iter(columns.values()))) if columns else 0
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def _load_from_hub(dataset_id: str, config: str, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as e:  # network, auth, unknown config: all need the same advice
        raise ConfigError(
            f"could not load {config}/{split} of {dataset_id!r} from the Hugging Face Hub "
            f"({type(e).__name__}: {e}); without Hub access pass muse_data=<folder> or muse_data=builtin"
        ) from e
    return as_rows(ds)


def validate_rows(rows: list[dict[str, Any]], config: str, split: str) -> None:
    """Not empty; every row has each of the split's fields as a non-empty string."""
    where = f"MUSE split {config}/{split}"
    if not rows:
        raise ConfigError(f"{where} is empty")
    for i, row in enumerate(rows):
        for key in SCHEMA[config][split]:
            if key not in row:
                raise ConfigError(f"{where} row {i} has no {key!r} field (fields: {sorted(row)})")
            if not isinstance(row[key], str) or not row[key].strip():
                raise ConfigError(f"{where} row {i}: {key!r} must be a non-empty string")


# ---- training source ---------------------------------------------------------------------------


class MuseTrainingSource(TextCorpusSource):
    """MUSE's raw text for training (``train_source._target_`` of the MUSE experiments).

    Unlearning: ``forget_split`` of ``forget_config`` (``raw``: ``forget``; ``scal`` / ``sust``:
    ``forget_1`` .. ``forget_4``) and ``retain_split`` (``retain1`` or ``retain2``) of ``raw``.
    Finetuning: ``train_split=full`` (forget + retain1 + retain2: the target) or ``retain``
    (retain1 + retain2: the retrained reference).
    """

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        self.data = MuseData.from_config(cfg)
        self.forget_config = str(cfg.get("forget_config") or "raw")

    def parts(self, split: str, mode: str) -> list[tuple[str, str]]:
        """The (config, split) pairs whose texts make up one training split."""
        if mode != "unlearn":
            if split not in FINETUNE_SPLITS:
                raise ConfigError(
                    f"train_split={split!r} is not a MUSE training split; use train_split=full "
                    "(the target: forget + retain) or train_split=retain (the retrained model)"
                )
            return [("raw", s) for s in FINETUNE_SPLITS[split]]
        if split == str(self.cfg.forget_split):
            if self.forget_config not in ("raw", "scal", "sust"):
                raise ConfigError(f"forget_config={self.forget_config!r}; use raw, scal or sust")
            return [(self.forget_config, split)]
        if split not in ("retain1", "retain2"):
            raise ConfigError(
                f"retain_split={split!r} is not a MUSE retain split; use retain1 or retain2"
            )
        return [("raw", split)]

    def check(self, splits: list[str], method_cls: type) -> int | None:
        check_text_method(method_cls)
        self.data.check([p for s in splits for p in self.parts(s, str(self.cfg.mode))])
        return None

    def load_texts(self, split: str) -> list[dict[str, Any]]:
        rows = []
        for config, part in self.parts(split, str(self.cfg.mode)):
            rows += [{"text": r["text"]} for r in self.data.load(config, part)]
        return rows
