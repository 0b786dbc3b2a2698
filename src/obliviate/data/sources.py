"""Where a training run's data comes from: ``train_source._target_`` names the class.

A training source answers four questions for ``obliviate.training``: which splits a run loads
(``splits``), whether they and the method fit before anything is loaded (``check``), the
validated rows (``load``), and how a tokenizer turns rows into training items
(``prepare_tokenizer`` + ``encoder``). TOFU's question/answer pairs are the default
(:class:`TofuTrainingSource`); raw text corpora subclass
:class:`obliviate.data.corpus.TextCorpusSource`.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from obliviate.config import target_class
from obliviate.data import tofu
from obliviate.data.datasets import encode_rows
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer

DEFAULT_SOURCE = "obliviate.data.sources.TofuTrainingSource"


def training_source(cfg: DictConfig) -> Any:
    """The source a config names (``train_source._target_``), TOFU when none is named."""
    section = cfg.get("train_source") or {}
    target = section.get("_target_") or DEFAULT_SOURCE
    return target_class("train_source._target_", target)(cfg)


class TofuTrainingSource:
    """TOFU question/answer pairs (Hub, local folder or ``tofu_data=builtin``)."""

    structure = "qa"

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def splits(self, mode: str) -> list[str]:
        if mode == "unlearn":
            tofu.check_split_pair(self.cfg.forget_split, self.cfg.retain_split)
            return [str(self.cfg.forget_split), str(self.cfg.retain_split), "full"]
        return [str(self.cfg.train_split)]

    def check(self, splits: list[str], method_cls: type) -> int | None:
        return tofu.check_source(self.cfg, splits)

    def load(self, splits: list[str], mode: str) -> dict[str, list[dict[str, Any]]]:
        """The splits, validated (and, unlearning, checked author-disjoint)."""
        source = tofu.TofuSource.from_config(self.cfg)
        rows = {s: source.load(s) for s in splits}
        for split, r in rows.items():
            tofu.validate_rows(r, split)
        if mode == "unlearn":
            forget, retain, full = splits
            tofu.check_disjoint(rows[forget], rows[retain], rows[full], (forget, retain))
        return rows

    def prepare_tokenizer(self, tokenizer: Any) -> Any:
        return prepare_tokenizer(tokenizer, ChatFormat.from_config(self.cfg.model.template))

    def encoder(self, tokenizer: Any) -> Any:
        fmt = ChatFormat.from_config(self.cfg.model.template)
        enc = QAEncoder(tokenizer, fmt, max_length=int(self.cfg.data.max_length))
        return lambda rows: encode_rows(enc, rows)
