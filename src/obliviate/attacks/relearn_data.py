"""What the relearning attack trains on (``attack.data``), and its training items.

- ``forget_sample``: a seeded ``attack.fraction`` of the evaluated forget items of one
  benchmark. TOFU: forget QA pairs (loss on the answer, chat format). MUSE: verbmem items, each
  as the text ``prompt + " " + gt`` (loss on every token), cut into chunks of ``data.max_length``
  tokens behind BOS as MUSE's training text is (:mod:`obliviate.data.corpus`); every item is
  chunked on its own, so no chunk mixes a trained item with another.
- ``retain``: TOFU's retain QA pairs (``retain_split``), or MUSE's retain articles
  (``raw/<retain_split>``, retain1 or retain2), joined and chunked exactly as MUSE training does.
- a JSON-lines file of ``{"question", "answer"}`` or ``{"text"}`` rows: unrelated data.

The benchmark is the one of ``eval.suites`` (tofu or muse); with both selected,
``attack.benchmark`` must say which (the forget items it trains on are left out of that
benchmark's metrics only).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from obliviate.data import tofu
from obliviate.data.corpus import bos_prefix, chunk_texts, chunk_token_ids
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.data.muse import MuseData
from obliviate.errors import ConfigError

DATA_KINDS = ("forget_sample", "retain")
BENCHMARKS = ("tofu", "muse")
MUSE_RETAIN_SPLITS = ("retain1", "retain2")


@dataclass
class RelearnData:
    """Rows to train on, where they come from, and how they become training items."""

    rows: list[dict[str, Any]]  # {"question", "answer"} or {"text"}
    benchmark: str | None = None  # the benchmark drawn from; None for a file
    used: list[int] = field(default_factory=list)  # forget items trained on (forget_sample)
    #: MUSE text: "each" (every row chunked alone) or "joined" (one stream, as MUSE training);
    #: None: QA rows in the chat format, text rows as they are
    corpus: str | None = None


def sample_indices(n: int, fraction: float, seed: int) -> list[int]:
    """A seeded ``fraction`` of ``range(n)`` (at least one item), sorted."""
    k = max(1, round(fraction * n))
    return sorted(random.Random(seed).sample(range(n), k))


def load_relearn_data(cfg: DictConfig, data: str, fraction: float, seed: int) -> RelearnData:
    """Check ``attack.data`` (and ``attack.benchmark``) and load its rows; no model needed."""
    if data not in DATA_KINDS:
        return RelearnData(read_rows(data))
    benchmark = pick_benchmark(cfg, data)
    if data == "forget_sample" and not 0 < fraction < 1:
        raise ConfigError(
            f"attack.fraction={fraction} must be in (0, 1): the share of forget items trained on; "
            "the others are evaluated"
        )
    load = tofu_data if benchmark == "tofu" else muse_data
    return load(cfg, data, fraction, seed)


def pick_benchmark(cfg: DictConfig, data: str) -> str:
    """``attack.benchmark``, or the one selected benchmark with forget items."""
    suites = (cfg.get("eval") or {}).get("suites") or {}
    selected = [b for b in BENCHMARKS if b in suites]
    chosen = cfg.attack.get("benchmark")
    if chosen is not None:
        if chosen not in BENCHMARKS:
            raise ConfigError(f"attack.benchmark={chosen!r}; use tofu or muse (or null)")
        if chosen not in selected:
            raise ConfigError(
                f"attack.benchmark={chosen} but eval={chosen} is not selected; add it to eval"
            )
        return str(chosen)
    if len(selected) == 1:
        return selected[0]
    if not selected:
        raise ConfigError(
            f"attack.data={data} draws from TOFU's or MUSE's splits, but neither eval=tofu nor "
            "eval=muse is selected; add one or pass a JSON-lines file as attack.data"
        )
    raise ConfigError(
        f"attack.data={data}: eval selects both tofu and muse; say which one to draw from with "
        "attack.benchmark=tofu or attack.benchmark=muse"
    )


def forget_sample(n: int, fraction: float, seed: int, cap_key: str) -> list[int]:
    used = sample_indices(n, fraction, seed)
    if len(used) >= n:
        raise ConfigError(
            f"attack.fraction={fraction} of {n} forget items leaves none to evaluate; lower it or "
            f"evaluate more items ({cap_key})"
        )
    return used


def tofu_data(cfg: DictConfig, data: str, fraction: float, seed: int) -> RelearnData:
    source = tofu.TofuSource.from_config(cfg)
    if data == "retain":
        return RelearnData(source.load(str(cfg.retain_split)), "tofu")
    forget = source.load(f"{cfg.forget_split}_perturbed")
    cap = cfg.eval.get("max_items")
    forget = forget[:cap] if cap else forget
    used = forget_sample(len(forget), fraction, seed, "eval.max_items")
    return RelearnData([forget[i] for i in used], "tofu", used)


def muse_data(cfg: DictConfig, data: str, fraction: float, seed: int) -> RelearnData:
    """MUSE rows from the same source the MUSE suite evaluates (eval.muse.muse_data, data_split)."""
    m = cfg.eval.muse
    source = MuseData.from_config(
        {
            "muse_data": m.muse_data,
            "data_split": m.data_split,
            "builtin_muse": cfg.get("builtin_muse"),
        }
    )
    if data == "retain":
        split = str(cfg.get("retain_split"))
        if split not in MUSE_RETAIN_SPLITS:
            raise ConfigError(
                f"retain_split={split} is not a MUSE retain split; pass retain_split=retain1 or "
                "retain_split=retain2 (attack.data=retain trains on raw/<retain_split>)"
            )
        texts = [{"text": r["text"]} for r in source.load("raw", split)]
        return RelearnData(texts, "muse", corpus="joined")
    verbmem = source.load("verbmem", "forget")
    cap = m.get("max_items")
    verbmem = verbmem[:cap] if cap else verbmem
    used = forget_sample(len(verbmem), fraction, seed, "eval.muse.max_items")
    rows = [{"text": verbmem[i]["prompt"] + " " + verbmem[i]["gt"]} for i in used]
    return RelearnData(rows, "muse", used, corpus="each")


def training_items(
    data: RelearnData, tokenizer: Any, cfg: DictConfig
) -> tuple[list[dict[str, list[int]]], list[int], int]:
    """(items, the row each item comes from, the pad id): chunks of MUSE text, else one item
    per row (QA rows in the model's chat format, loss on the answer; text rows, every token)."""
    max_length = int(cfg.data.max_length)
    if data.corpus is None:
        fmt = ChatFormat.from_config(cfg.model.template)
        encoder = QAEncoder(prepare_tokenizer(tokenizer, fmt), fmt, max_length)
        items = [encode_row(encoder, r) for r in data.rows]
        return items, list(range(len(items))), encoder.tokenizer.pad_token_id
    if tokenizer.pad_token is None:  # batching needs one; the labels mask the padding
        tokenizer.pad_token = tokenizer.eos_token
    texts = [r["text"] for r in data.rows]
    if data.corpus == "joined":
        items = chunk_texts(texts, tokenizer, max_length)
        return items, list(range(len(items))), tokenizer.pad_token_id
    items, owners = [], []
    for k, text in enumerate(texts):
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        chunks = chunk_token_ids(ids, max_length, bos_prefix(tokenizer))
        items += chunks
        owners += [k] * len(chunks)
    return items, owners, tokenizer.pad_token_id


def encode_row(encoder: QAEncoder, row: dict[str, Any]) -> dict[str, list[int]]:
    """A QA row: the answer is the target; a text row: every token is."""
    if "question" in row:
        return encoder.encode(row["question"], row["answer"])
    ids = encoder.tokenizer(row["text"], add_special_tokens=False)["input_ids"][
        : encoder.max_length
    ]
    return {"input_ids": ids, "labels": list(ids)}


def read_rows(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines (or JSON list) file of QA pairs or texts, checked."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(
            f"attack.data={path!r} is neither {' nor '.join(DATA_KINDS)} nor a file; pass a JSON-lines "
            'file of {"question", "answer"} or {"text"} rows'
        )
    text = p.read_text(encoding="utf-8").strip()
    try:
        rows = (
            json.loads(text)
            if text.startswith("[")
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"attack.data={path!r} is not JSON lines ({e.msg}, line {e.lineno})"
        ) from e
    for i, r in enumerate(rows):
        ok = isinstance(r, dict) and (
            ("question" in r and "answer" in r) or isinstance(r.get("text"), str)
        )
        if not ok:
            raise ConfigError(
                f"attack.data={path!r} row {i} has neither question+answer nor text; fix the file"
            )
    if not rows:
        raise ConfigError(f"attack.data={path!r} is empty")
    return rows
