"""WMDP's unlearning corpora (Li et al., 2024, arXiv 2403.03218) as a raw-text training source.

``wmdp_data`` is a local folder holding the corpora as the WMDP authors distribute them, one
file per corpus, ``<folder>/<name>.jsonl``:

- ``bio-forget-corpus.jsonl``: JSON lines (``title``, ``abstract``, ``text``, ``doi``); the
  document is the ``text`` field. Gated: request it from the WMDP authors
  (https://huggingface.co/datasets/cais/wmdp-bio-forget-corpus);
- ``cyber-forget-corpus.jsonl``, ``bio-retain-corpus.jsonl``, ``cyber-retain-corpus.jsonl``
  (https://huggingface.co/datasets/cais/wmdp-corpora): one plain-text document per line;
- ``wikitext.jsonl``: the paper's original retain set (wikitext-2-raw-v1, test split) saved as
  JSON lines with a ``text`` field (``retain_split=wikitext``).

Each corpus is read as its format is: the bio forget corpus's JSON is parsed and its ``text``
kept (a reader that takes its lines as raw text would train on JSON syntax, titles and DOIs);
the plain-text corpora are taken line by line. As the RMU reference code does, documents of 50
characters or fewer are dropped. The kept texts are chunked to ``data.max_length`` tokens by
:mod:`obliviate.data.corpus`, the same path every method consumes.

``wmdp_data=builtin``: the generated stand-in of :mod:`obliviate.data.builtin_wmdp`, written in
the same layout (so the same reader reads it), offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from obliviate.data import builtin_wmdp
from obliviate.data.corpus import TextCorpusSource, check_text_method
from obliviate.errors import ConfigError
from obliviate.utils.io import atomic_write_text

DATA_SPLITS = ("bio", "cyber")
BUILTIN = "builtin"
#: corpora stored as JSON lines with a ``text`` field; every other corpus is plain text lines
JSON_CORPORA = ("bio-forget-corpus", "wikitext")
GATED = "bio-forget-corpus"
GATED_HELP = (
    "the WMDP bio forget corpus is gated: request access at "
    "https://huggingface.co/datasets/cais/wmdp-bio-forget-corpus (the WMDP authors' form), then "
    "save it there as bio-forget-corpus.jsonl (JSON lines with a 'text' field)"
)
#: the reference code keeps only documents longer than this many characters
MIN_CHARS = 50


def corpus_names(data_split: str) -> tuple[str, ...]:
    return (f"{data_split}-forget-corpus", f"{data_split}-retain-corpus", "wikitext")


def read_corpus(path: Path, name: str) -> list[str]:
    """The documents of one corpus file, read as its format is (module docstring)."""
    texts = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            text = _json_text(line, path, n) if name in JSON_CORPORA else line.rstrip("\n")
            if len(text) > MIN_CHARS:
                texts.append(text)
    if not texts:
        raise ConfigError(f"{path} holds no document longer than {MIN_CHARS} characters")
    return texts


def _json_text(line: str, path: Path, n: int) -> str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{path}:{n} is not valid JSON ({e.msg}); this corpus is JSON lines with a 'text' field"
        ) from e
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise ConfigError(f"{path}:{n} has no 'text' string field")
    return row["text"]


def materialise_builtin(root: Path | None = None) -> Path:
    """Write the built-in corpora in WMDP's layout (both splits alike) into a cache folder."""
    from obliviate.models.smollm2 import cache_root

    folder = (root or cache_root() / "data") / f"wmdp-builtin-v{builtin_wmdp.GENERATOR_VERSION}"
    corpora = builtin_wmdp.corpora()
    files = {f"{s}-forget-corpus": corpora["forget"] for s in DATA_SPLITS}
    files |= {f"{s}-retain-corpus": corpora["retain"] for s in DATA_SPLITS}
    files["wikitext"] = corpora["retain"]
    if all((folder / f"{n}.jsonl").is_file() for n in files):
        return folder
    for name, texts in files.items():  # atomic: ranks of one launch may write at once
        lines = [json.dumps({"text": t}) if name in JSON_CORPORA else t for t in texts]
        atomic_write_text(folder / f"{name}.jsonl", "".join(line + "\n" for line in lines))
    return folder


class WmdpTrainingSource(TextCorpusSource):
    """WMDP's forget corpus (``forget_split``) and a retain corpus (``retain_split``: the same
    domain's retain corpus, or ``wikitext``), raw text chunked like every text corpus."""

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg)
        split = str(cfg.get("data_split"))
        if split not in DATA_SPLITS:
            raise ConfigError(f"data_split={split!r} is not a WMDP corpus; use bio or cyber")
        self.data_split = split

    def splits(self, mode: str) -> list[str]:
        if mode != "unlearn":
            raise ConfigError("the WMDP corpora are for unlearning; use --config-name=unlearn.yaml")
        forget, retain = str(self.cfg.forget_split), str(self.cfg.retain_split)
        names = corpus_names(self.data_split)
        if forget != names[0]:
            raise ConfigError(
                f"forget_split={forget!r}; with data_split={self.data_split} use {names[0]}"
            )
        if retain not in names[1:]:
            raise ConfigError(f"retain_split={retain!r}; use {names[1]} or wikitext")
        return [forget, retain]

    def check(self, splits: list[str], method_cls: type) -> int | None:
        check_text_method(method_cls)
        folder = self._folder()
        for name in splits:
            if not (folder / f"{name}.jsonl").is_file():
                raise ConfigError(self._missing(folder, name))
        return None

    def _missing(self, folder: Path, name: str) -> str:
        where = f"wmdp_data={str(folder)!r} has no {name}.jsonl"
        if name == GATED:
            return f"{where}; {GATED_HELP}"
        if name == "wikitext":
            return f"{where}; save wikitext-2-raw-v1's test split there as JSON lines with a 'text' field"
        return f"{where}; download it from https://huggingface.co/datasets/cais/wmdp-corpora (or wmdp_data=builtin)"

    def _folder(self) -> Path:
        location = self.cfg.get("wmdp_data")
        if not location or str(location) == "???":
            raise ConfigError(
                "wmdp_data is not set; pass wmdp_data=<folder of WMDP corpora> or builtin"
            )
        if str(location) == BUILTIN:
            return materialise_builtin()
        folder = Path(str(location)).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"wmdp_data={str(location)!r} is not a folder; pass the folder holding the "
                "WMDP corpora (<name>.jsonl), or wmdp_data=builtin"
            )
        return folder

    def load_texts(self, split: str) -> list[dict[str, Any]]:
        return [{"text": t} for t in read_corpus(self._folder() / f"{split}.jsonl", split)]
