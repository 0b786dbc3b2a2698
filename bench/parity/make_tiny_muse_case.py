#!/usr/bin/env python3
"""Build the small MUSE parity case that tests/parity pins: a tiny byte-level Llama trained a
little on built-in MUSE articles, and a few items of every evaluated MUSE split.

  PYTHONPATH=src python bench/parity/make_tiny_muse_case.py WORK_DIR

Writes (obliviate's venv, transformers 5):
  tests/parity/tiny_muse_model/  the model (safetensors + config); the tokenizer is
                                 obliviate.models.tiny's byte tokenizer, built in code by the test
  WORK_DIR/tiny_muse_ou/         the same model + tokenizer as transformers 4.45 loads them
  WORK_DIR/muse_case/            <config>/<split>.jsonl, the chosen items (obliviate's MUSE folder
                                 layout; bench/parity/record_ou_muse.py points open-unlearning's
                                 dataset configs at the same files)
  WORK_DIR/muse_items.json       the chosen items per split (copied into the recording)

Items: ``muse_data=builtin`` with 4 forget / 4 retain / 4 holdout articles and 2 in-context
pairs; the first N_ITEMS rows of each evaluated split. The model is
``build_tiny_model(tokenizer="bytes", init_seed=1)`` after STEPS full-batch Adam steps on the
first half of the forget articles and of each knowmem split's questions (prompt + answer): it
recites those and not the others, so verbmem, extraction strength, knowmem and the min-k%
attack each see some memorised items and some unseen ones (no score saturated).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from make_tiny_case import write_ou_copy  # type: ignore[import-not-found]

from obliviate.data.builtin_muse import BuiltinMuseOptions, build_muse_splits
from obliviate.data.collate import pad_batch
from obliviate.eval import muse_metrics as MM
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "tests/parity/tiny_muse_model"
N_ITEMS = 4
STEPS = 300
OPTIONS = BuiltinMuseOptions(forget=4, retain=4, holdout=4, icl=2, seed=0)
#: (MUSE config, split) of every file the evaluation reads
SPLITS = (
    ("knowmem", "forget_qa"),
    ("knowmem", "retain_qa"),
    ("knowmem", "forget_qa_icl"),
    ("knowmem", "retain_qa_icl"),
    ("verbmem", "forget"),
    ("privleak", "forget"),
    ("privleak", "holdout"),
)


def choose_items() -> dict[str, list[dict]]:
    corpus = build_muse_splits(OPTIONS)
    return {f"{c}/{s}": corpus[c][s][:N_ITEMS] for c, s in SPLITS}


def training_texts(items: dict[str, list[dict]]) -> list[str]:
    """The first half of the forget articles and, for each knowmem split, of its prompts with
    their answers."""
    half = N_ITEMS // 2
    texts = [r["text"] for r in items["privleak/forget"][:half]]
    for split in ("forget_qa", "retain_qa"):
        icl = [(r["question"], r["answer"]) for r in items[f"knowmem/{split}_icl"]]
        for r in items[f"knowmem/{split}"][:half]:
            texts.append(MM.knowmem_prompt(icl, r["question"]) + r["answer"] + "\n\n")
    return texts


def train_a_little(texts: list[str]) -> torch.nn.Module:
    tok = build_tiny_tokenizer("bytes")
    rows = [[tok.bos_token_id, *tok(t, add_special_tokens=False)["input_ids"]] for t in texts]
    batch = pad_batch([{"input_ids": r, "labels": r} for r in rows], pad_id=0)
    model = build_tiny_model(tokenizer="bytes", init_seed=1)
    torch.manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(STEPS):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"final training loss {loss.item():.4f}")
    return model.eval()


def main() -> None:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    items = choose_items()
    model = train_a_little(training_texts(items))
    model.save_pretrained(MODEL_DIR)
    write_ou_copy(model, work / "tiny_muse_ou")
    for key, rows in items.items():
        path = work / "muse_case" / f"{key}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (work / "muse_items.json").write_text(json.dumps(items, indent=1))
    print(f"wrote {MODEL_DIR}, {work / 'tiny_muse_ou'}, {work / 'muse_case'}")


if __name__ == "__main__":
    main()
