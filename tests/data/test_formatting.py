"""Chat formatting, label masks and padding for the tiny model (Llama-3 tokenizer, Llama-3.2
chat format), checked against the format string written out by hand."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, llama32_prompt
from obliviate.data.collate import PairCollator, pad_batch
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.errors import ConfigError
from obliviate.logprobs import sequence_logprobs
from obliviate.models.tiny import build_tiny_tokenizer

BOS, EOT, PAD = 128000, 128009, 128004
QUESTION = "What gender is author Basil Mahfouz Al-Kuwaiti?"
ANSWER = "Author Basil Mahfouz Al-Kuwaiti is male."


@pytest.fixture(scope="module")
def fmt() -> ChatFormat:
    return ChatFormat.from_config(OmegaConf.load(CONFIG_DIR / "model" / "tiny.yaml").template)


@pytest.fixture(scope="module")
def tokenizer(fmt):
    return prepare_tokenizer(build_tiny_tokenizer(), fmt)


@pytest.fixture(scope="module")
def encoder(tokenizer, fmt) -> QAEncoder:
    return QAEncoder(tokenizer, fmt, max_length=512)


def test_tiny_template_settings(fmt):
    assert fmt == ChatFormat(
        system_prompt="You are a helpful assistant.",
        end_of_turn="<|eot_id|>",
        date_string="10 Apr 2025",
        pad_token="<|reserved_special_token_2|>",
    )


def test_prompt_text_is_the_llama32_format(encoder):
    assert encoder.prompt_text(QUESTION) == llama32_prompt(QUESTION)


def test_pad_token_is_not_end_of_turn(tokenizer):
    assert tokenizer.pad_token == "<|reserved_special_token_2|>"
    assert tokenizer.pad_token_id == PAD
    assert tokenizer.pad_token_id != tokenizer.convert_tokens_to_ids("<|eot_id|>") == EOT


def test_encode_masks_exactly_the_prompt(encoder, tokenizer):
    item = encoder.encode(QUESTION, ANSWER)
    prompt = tokenizer(llama32_prompt(QUESTION), add_special_tokens=False)["input_ids"]
    answer = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    # One BOS (the template's), then the system header.
    assert prompt[:2] == [BOS, 128006] and prompt.count(BOS) == 1
    assert item["input_ids"] == prompt + answer + [EOT]
    assert item["labels"] == [-100] * len(prompt) + answer + [EOT]
    # <|eot_id|> closes the system and user turns inside the prompt; the pad id never occurs.
    assert prompt.count(EOT) == 2
    assert PAD not in item["input_ids"]


def test_prompt_ids_never_contain_the_pad_id(encoder):
    for q in [QUESTION, "Short?", "Who wrote 'Tin Orchard'?", "A question with\nnew lines\n"]:
        assert PAD not in encoder.prompt_ids(q)


def test_one_token_answer(encoder, tokenizer):
    # "Yes" is a single Llama-3 token (9642): labels hold it and the closing <|eot_id|>.
    assert tokenizer("Yes", add_special_tokens=False)["input_ids"] == [9642]
    item = encoder.encode("Is it?", "Yes")
    n_prompt = len(encoder.prompt_ids("Is it?"))
    assert item["labels"] == [-100] * n_prompt + [9642, EOT]
    batch = pad_batch([item], PAD)
    logps = sequence_logprobs(torch.zeros(1, len(item["input_ids"]), 128256), batch["labels"])
    assert logps.count.tolist() == [2]


def test_answer_is_stripped_like_the_chat_template_strips_content(encoder):
    # "Paris" is token 60704 and " Paris" a different token: surrounding spaces must go.
    assert encoder.answer_ids("  Paris \n") == [60704, EOT]


def test_truncation_cuts_the_answer_tail_never_the_prompt(tokenizer, fmt):
    full = QAEncoder(tokenizer, fmt, max_length=512).encode(QUESTION, ANSWER)
    n_prompt = full["labels"].count(-100)
    short = QAEncoder(tokenizer, fmt, max_length=n_prompt + 2).encode(QUESTION, ANSWER)
    assert short["input_ids"] == full["input_ids"][: n_prompt + 2]
    assert short["labels"] == full["labels"][: n_prompt + 2]
    with pytest.raises(ConfigError, match="max_length"):
        QAEncoder(tokenizer, fmt, max_length=n_prompt).encode(QUESTION, ANSWER)


def test_collation_pads_right_with_mask_and_ignored_labels(encoder):
    a = encoder.encode("Is it?", "Yes")
    b = encoder.encode(QUESTION, ANSWER)
    la, lb = len(a["input_ids"]), len(b["input_ids"])
    assert la < lb
    batch = pad_batch([a, b], PAD)
    assert (
        batch["input_ids"].shape
        == batch["labels"].shape
        == batch["attention_mask"].shape
        == (2, lb)
    )
    # The short item keeps its tokens on the left; the right is padding.
    assert batch["input_ids"][0, :la].tolist() == a["input_ids"]
    assert batch["input_ids"][0, la:].tolist() == [PAD] * (lb - la)
    assert batch["attention_mask"][0].tolist() == [1] * la + [0] * (lb - la)
    assert batch["labels"][0].tolist() == a["labels"] + [-100] * (lb - la)
    assert batch["attention_mask"][1].tolist() == [1] * lb
    assert batch["labels"][1].tolist() == b["labels"]


def test_pair_collator_makes_one_sub_batch_per_part(encoder):
    f0 = {**encoder.encode("Is it?", "Yes"), "index": 0, "ref_logp": -3.5}
    f1 = {**encoder.encode(QUESTION, ANSWER), "index": 7, "ref_logp": -20.0}
    r0 = {**encoder.encode("Where?", "Here."), "index": 3}
    r1 = {**encoder.encode("When?", "Now."), "index": 1}
    out = PairCollator(PAD)([{"forget": f0, "retain": r0}, {"forget": f1, "retain": r1}])
    assert set(out) == {"forget", "retain"}
    assert out["forget"]["index"].tolist() == [0, 7]
    assert out["forget"]["ref_logp"].tolist() == [-3.5, -20.0]
    assert out["retain"]["index"].tolist() == [3, 1]
    assert "ref_logp" not in out["retain"]
    assert out["forget"]["input_ids"].size(1) == len(f1["input_ids"])
    assert out["retain"]["input_ids"].size(1) == max(len(r0["input_ids"]), len(r1["input_ids"]))


def test_prepare_tokenizer_rejects_unknown_special_tokens(fmt):
    with pytest.raises(ConfigError, match="end_of_turn"):
        prepare_tokenizer(build_tiny_tokenizer(), ChatFormat("sys", "<|no_such_token|>"))
    with pytest.raises(ConfigError, match="pad_token"):
        prepare_tokenizer(
            build_tiny_tokenizer(), ChatFormat("sys", "<|eot_id|>", pad_token="<|nope|>")
        )


def test_prepare_tokenizer_requires_a_chat_template(fmt):
    tok = build_tiny_tokenizer()
    tok.chat_template = None
    with pytest.raises(ConfigError, match="chat template"):
        prepare_tokenizer(tok, fmt)
