"""Raw-text training data: documents joined and cut into fixed-length token chunks.

MUSE (and WMDP's corpora) train on plain text, not question/answer pairs. A split's texts are
joined with a blank line, tokenised once, and cut into consecutive chunks; each chunk starts
with the tokenizer's BOS token when it has one and holds at most ``max_length`` tokens in all.
Every text token is labelled (BOS is not: nothing predicts it). The items have the keys the methods
consume from QA data (``input_ids``, ``labels``, ``index``; the collator adds the attention
mask), so every forget-loss that needs no question structure runs on them unchanged.

:class:`TextCorpusSource` is the training source of such data; a benchmark subclasses it and
says where its texts come from (:meth:`TextCorpusSource.load_texts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from obliviate.data.formatting import IGNORE_INDEX
from obliviate.errors import ConfigError
from obliviate.utils.io import read_json_lines

#: between two documents of a split (open-unlearning's MUSE pretraining data joins them so too)
SEPARATOR = "\n\n"


def bos_prefix(tokenizer: Any) -> list[int]:
    """``[BOS]`` when the tokenizer has a BOS token (Llama-2, Llama-3, the tiny models), else
    ``[]``. Added explicitly, not through ``add_special_tokens``: tokenizers differ in whether
    they add it themselves (the tiny model's does not), and MUSE's protocol wants it."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return [] if bos is None else [int(bos)]


def chunk_token_ids(
    ids: list[int], max_length: int, prefix: list[int]
) -> list[dict[str, list[int]]]:
    """Cut ``ids`` into consecutive pieces of ``max_length - len(prefix)`` tokens, each behind
    ``prefix``. ``labels`` = -100 on the prefix, the token ids elsewhere. The last piece keeps
    the remainder; a piece whose only token would be the first of a sequence (no prefix, one
    token) is dropped: no position predicts it."""
    room = max_length - len(prefix)
    if room < 1:
        raise ConfigError(
            f"data.max_length={max_length} leaves no room for text after the "
            f"{len(prefix)} leading BOS token(s); raise data.max_length"
        )
    chunks = []
    for start in range(0, len(ids), room):
        piece = ids[start : start + room]
        if not prefix and len(piece) < 2:
            continue
        chunks.append({"input_ids": prefix + piece, "labels": [IGNORE_INDEX] * len(prefix) + piece})
    return chunks


def chunk_texts(texts: list[str], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """Training items of one split: its texts joined by a blank line, tokenised once, chunked;
    ``index`` is the chunk's position in the split."""
    # one long sequence on purpose: verbose=False silences the "longer than the model" warning
    ids = tokenizer(SEPARATOR.join(texts), add_special_tokens=False, verbose=False)["input_ids"]
    chunks = chunk_token_ids(ids, max_length, bos_prefix(tokenizer))
    return [{**c, "index": i} for i, c in enumerate(chunks)]


def validate_texts(rows: list[dict[str, Any]], split: str, key: str = "text") -> None:
    """Every row of a text split has a non-empty string under ``key``; the split is not empty."""
    if not rows:
        raise ConfigError(f"text split {split!r} is empty")
    for i, row in enumerate(rows):
        value = row.get(key) if isinstance(row, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"text split {split!r} row {i} has no non-empty {key!r} field "
                f"(fields: {sorted(row) if isinstance(row, dict) else type(row).__name__})"
            )


class TextCorpusSource:
    """A training source of raw text (``train_source._target_`` in a config).

    ``splits`` names what a run loads: unlearning ``[forget_split, retain_split]``, finetuning
    ``[train_split]``. A subclass implements ``load_texts(split)`` and, where it can, ``check``
    (no loading) and ``nominal_rows``. This base reads ``<text_data>/<split>.jsonl`` files with
    a ``text`` field, which is enough for any local corpus.
    """

    structure = "text"  # the rows are documents, not question/answer pairs

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.max_length = int(cfg.data.max_length)

    # ---- what a run needs, checked before loading ------------------------------------------
    def splits(self, mode: str) -> list[str]:
        if mode == "unlearn":
            return [str(self.cfg.forget_split), str(self.cfg.retain_split)]
        return [str(self.cfg.train_split)]

    def check(self, splits: list[str], method_cls: type) -> int | None:
        """Cheap checks (no loading): the method works on raw text, the files exist. Returns
        the number of training items when known without loading (never, for chunked text)."""
        check_text_method(method_cls)
        self.check_files(splits)
        return None

    def check_files(self, splits: list[str]) -> None:
        root = self._folder()
        missing = [s for s in splits if not (root / f"{s}.jsonl").is_file()]
        if missing:
            raise ConfigError(
                f"text_data={str(root)!r} has no file for split(s) {', '.join(missing)} "
                f"(expected {root / (missing[0] + '.jsonl')}, one JSON object with a 'text' field per line)"
            )

    def _folder(self) -> Path:
        location = self.cfg.get("text_data")
        if not location:
            raise ConfigError(
                "text_data is not set; pass text_data=<folder of <split>.jsonl files>"
            )
        return Path(str(location)).expanduser()

    # ---- loading ------------------------------------------------------------------------------
    def load_texts(self, split: str) -> list[dict[str, Any]]:
        return read_json_lines(self._folder() / f"{split}.jsonl")

    def load(self, splits: list[str], mode: str) -> dict[str, list[dict[str, Any]]]:
        """Rows ``{"text": ...}`` per split, validated; unlearning: no document in both."""
        rows = {s: self.load_texts(s) for s in splits}
        for split, r in rows.items():
            validate_texts(r, split)
        if mode == "unlearn":
            forget, retain = splits[:2]
            shared = {r["text"] for r in rows[forget]} & {r["text"] for r in rows[retain]}
            if shared:
                raise ConfigError(
                    f"{forget} and {retain} share {len(shared)} document(s); a document must be "
                    "either forgotten or kept"
                )
        return rows

    # ---- tokenizer and items ------------------------------------------------------------------
    def prepare_tokenizer(self, tokenizer: Any) -> Any:
        """No chat template needed; a pad token (the model config's, else EOS) for batching."""
        template = self.cfg.model.get("template") or {}
        pad = template.get("pad_token")
        if pad is not None:
            pad_id = tokenizer.convert_tokens_to_ids(pad)
            if pad_id is None or pad_id == tokenizer.unk_token_id:
                raise ConfigError(
                    f"pad token {pad!r} (model.template.pad_token) is not in the tokenizer's vocabulary"
                )
            tokenizer.pad_token = pad
        elif tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def encoder(self, tokenizer: Any) -> Any:
        """rows -> training items (chunks of ``data.max_length`` tokens)."""
        return lambda rows: chunk_texts([r["text"] for r in rows], tokenizer, self.max_length)


def check_text_method(method_cls: type) -> None:
    """Methods that build extra answers per question (IdkDPO's refusals) need QA pairs."""
    from obliviate.methods.base import UnlearnTrainer

    own = getattr(method_cls, "alternate_rows", None)
    base = UnlearnTrainer.alternate_rows
    if own is not None and getattr(own, "__func__", own) is not getattr(base, "__func__", base):
        raise ConfigError(
            f"trainer={method_cls.__name__} needs question/answer pairs (it builds a second answer "
            "per forget question) but this training source is raw text; choose a method such as "
            "SimNPO, NPO, GradDiff, GradAscent or RMU"
        )
