"""Raw-text training data: chunk boundaries worked out by hand, the text training source end to
end on the tiny byte-level model, and the clear refusals (QA-only methods, missing files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import TINY_TRAIN, compose_config
from obliviate.data.corpus import (
    bos_prefix,
    chunk_texts,
    chunk_token_ids,
    validate_texts,
)
from obliviate.data.formatting import IGNORE_INDEX as X
from obliviate.errors import ConfigError
from obliviate.models.tiny import BYTE_BOS_ID, build_tiny_tokenizer

BOS = [7]


def test_chunks_behind_a_bos_hold_max_length_tokens_and_label_every_text_token():
    # 7 text tokens, max_length 4, BOS = [7]: room 3 per chunk -> [1 2 3] [4 5 6] [8]
    chunks = chunk_token_ids([1, 2, 3, 4, 5, 6, 8], 4, BOS)
    assert [c["input_ids"] for c in chunks] == [[7, 1, 2, 3], [7, 4, 5, 6], [7, 8]]
    assert [c["labels"] for c in chunks] == [[X, 1, 2, 3], [X, 4, 5, 6], [X, 8]]


def test_chunks_without_a_prefix_drop_only_an_unpredictable_single_token():
    # no prefix, room 3: [1 2 3] [4 5 6] and a lone [8], which no position predicts -> dropped
    chunks = chunk_token_ids([1, 2, 3, 4, 5, 6, 8], 3, [])
    assert [c["input_ids"] for c in chunks] == [[1, 2, 3], [4, 5, 6]]
    assert chunks[0]["labels"] == [1, 2, 3]
    # an exact multiple leaves no empty last chunk (open-unlearning's loop makes one)
    assert len(chunk_token_ids([1, 2, 3, 4, 5, 6], 3, [])) == 2
    # two tokens left over are kept: the second is predicted from the first
    assert chunk_token_ids([1, 2, 3, 4, 5], 3, [])[-1]["input_ids"] == [4, 5]


def test_max_length_must_leave_room_after_the_prefix():
    with pytest.raises(ConfigError, match=r"data.max_length=1 leaves no room"):
        chunk_token_ids([1, 2], 1, BOS)


def test_texts_are_joined_by_a_blank_line_and_tokenised_once():
    tok = build_tiny_tokenizer("bytes")  # id = byte value; BOS = 256
    assert bos_prefix(tok) == [BYTE_BOS_ID]
    items = chunk_texts(["ab", "cd"], tok, 4)
    # "ab\n\ncd" = 97 98 10 10 99 100, room 3 -> [BOS 97 98 10] [BOS 10 99 100]
    assert [it["input_ids"] for it in items] == [[256, 97, 98, 10], [256, 10, 99, 100]]
    assert [it["labels"] for it in items] == [[X, 97, 98, 10], [X, 10, 99, 100]]
    assert [it["index"] for it in items] == [0, 1]
    tok.bos_token = None  # a tokenizer without BOS: no prefix, room 4
    assert [it["input_ids"] for it in chunk_texts(["ab", "cd"], tok, 4)] == [
        [97, 98, 10, 10],
        [99, 100],
    ]


def test_text_rows_are_validated_one_error_each():
    with pytest.raises(ConfigError, match="'forget' is empty"):
        validate_texts([], "forget")
    with pytest.raises(ConfigError, match=r"'retain' row 1 has no non-empty 'text'"):
        validate_texts([{"text": "a"}, {"text": "  "}], "retain")


# ---- the text training source in a real run ---------------------------------------------------


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    docs = {
        "forget": ["The lighthouse of Varnholm was lit by Edda Morn in 1911. " * 3],
        "retain": [
            f"Retained document {i} about the tides of Ossery harbour. " * 3 for i in range(3)
        ],
    }
    for split, texts in docs.items():
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": t}) + "\n" for t in texts)
        )
    return folder


def text_overrides(folder: Path, out: Path, trainer: str) -> list[str]:
    return [
        *TINY_TRAIN,
        "model=tiny-bytes",
        f"trainer={trainer}",
        "train_source._target_=obliviate.data.corpus.TextCorpusSource",
        f"+text_data={folder}",
        "forget_split=forget",
        "retain_split=retain",
        "data.max_length=64",
        "task_name=corpus_run",
        f"paths.output_dir={out}",
    ]


def test_graddiff_unlearns_text_chunks_and_every_weight_moves(tmp_path):
    from obliviate.training import preflight, run_training

    cfg = compose_config(text_overrides(write_corpus(tmp_path / "c"), tmp_path / "run", "GradDiff"))
    plan = preflight(cfg)
    assert plan.splits == ["forget", "retain"] and plan.source.structure == "text"
    out = run_training(cfg)
    log = (out / "trainer_log.txt").read_text()
    assert "forget_loss=" in log and "retain_loss=" in log
    receipt = json.loads((out / "receipt.json").read_text())
    assert set(receipt["data_sha256"]) == {"forget", "retain"}
    from transformers import AutoModelForCausalLM

    from obliviate.models.tiny import build_tiny_model

    trained = AutoModelForCausalLM.from_pretrained(out)
    start = build_tiny_model(tokenizer="bytes")
    moved = [
        n
        for (n, p), (_, q) in zip(trained.named_parameters(), start.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert len(moved) == len(list(start.parameters()))


def test_qa_only_methods_and_missing_files_are_refused_before_loading(tmp_path):
    from obliviate.training import preflight

    folder = write_corpus(tmp_path / "c")
    with pytest.raises(ConfigError, match="IdkDPO needs question/answer pairs"):
        preflight(compose_config(text_overrides(folder, tmp_path / "a", "IdkDPO")))
    with pytest.raises(ConfigError, match="has no file for split"):
        preflight(compose_config(text_overrides(tmp_path / "nowhere", tmp_path / "c2", "NPO")))
