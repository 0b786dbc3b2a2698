"""The fast paths give the numbers of the plain reference paths (issue: speed without changing
a single metric value)."""

from __future__ import annotations

import json

import pytest
import torch

from obliviate.data.collate import pad_batch
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.eval.scoring import greedy_generate, score_answers
from obliviate.logprobs import forward_logprobs, sequence_logprobs
from obliviate.methods.base import reference_logps
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the GPU run checks the CUDA paths too
# The byte-level tiny model (261-token vocabulary): the paths compared here do not depend on the
# tokenizer, and its small logits keep HF generate's reference decoding fast.
FMT = ChatFormat(
    "You are a helpful assistant.", "<|eot_id|>", "10 Apr 2025", "<|finetune_right_pad_id|>"
)
QA = [
    ("Who wrote 'The Glass Orchard'?", "Mira Tolland wrote it in 1987."),
    ("Where was Mira Tolland born?", "Yes"),
    (
        "What genre does Mira Tolland write?",
        "She writes slow, sprawling family sagas set on the coast of Maine.",
    ),
    ("Which award did she win?", "The Harbour Lantern Prize for Fiction, twice."),
    ("What did her father do?", "He was a lighthouse keeper."),
]


@pytest.fixture(scope="module")
def encoder() -> QAEncoder:
    return QAEncoder(prepare_tokenizer(build_tiny_tokenizer("bytes"), FMT), FMT)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    m = build_tiny_model(init_seed=1, tokenizer="bytes").eval().to(DEVICE)
    with torch.no_grad():  # sharpen the random model so greedy decoding is not one token repeated
        for p in m.parameters():
            p.mul_(20)
    return m


def test_answer_window_logits_match_full_logits(model, encoder):
    batch = pad_batch([encoder.encode(q, a) for q, a in QA], encoder.tokenizer.pad_token_id)
    batch = {k: v.to(DEVICE) for k, v in batch.items()}
    with torch.no_grad():
        full = sequence_logprobs(
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
            batch["labels"],
        )
        fast, logits = forward_logprobs(model, batch)
    assert logits.size(1) < batch["input_ids"].size(1)  # the prompt's logits were skipped
    torch.testing.assert_close(fast.sum, full.sum, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(fast.count, full.count)


def test_batched_length_sorted_scoring_matches_one_by_one(model, encoder):
    batched = score_answers(model, encoder, QA, batch_size=4)
    single = score_answers(model, encoder, QA, batch_size=1)
    for b, s in zip(batched, single, strict=True):
        # the losses themselves: with the sharpened model exp(-loss) is ~0 for every answer
        assert b.avg_loss == pytest.approx(s.avg_loss, rel=1e-5, abs=1e-4)
        torch.testing.assert_close(b.token_logp, s.token_logp, rtol=1e-5, atol=1e-4)
        assert torch.equal(b.pred_ids, s.pred_ids)


def test_greedy_loop_matches_hf_generate_and_batch_size(model, encoder):
    questions = [q for q, _ in QA]
    fast = greedy_generate(model, encoder, questions, max_new_tokens=20, batch_size=3)
    hf = greedy_generate(
        model, encoder, questions, max_new_tokens=20, batch_size=3, use_hf_generate=True
    )
    one = greedy_generate(model, encoder, questions, max_new_tokens=20, batch_size=1)
    assert fast == hf == one
    assert any(fast)  # not all empty: the comparison is about real tokens


def test_precomputed_reference_logps_equal_a_reference_forward(model, encoder):
    items = [encoder.encode(q, a) for q, a in QA]
    pre = reference_logps(model, items, encoder.tokenizer.pad_token_id, batch_size=2)
    for item, lp in zip(items, pre, strict=True):
        ids = torch.tensor([item["input_ids"]], device=DEVICE)
        with torch.no_grad():
            logits = model(input_ids=ids).logits
        direct = sequence_logprobs(logits, torch.tensor([item["labels"]], device=DEVICE)).sum.item()
        assert lp == pytest.approx(direct, rel=1e-5, abs=1e-4)


def test_fused_accumulation_logs_the_same_losses(compose, tmp_path, caplog):
    from conftest import write_mini_tofu
    from obliviate.training import run_training

    data = write_mini_tofu(tmp_path / "tofu")
    logs = {}
    for fuse in ("true", "2", "false"):  # all 4 micro-batches per pass, 2 per pass, plain
        caplog.clear()
        cfg = compose(
            [
                "experiment=unlearn/tofu/default",
                "trainer=SimNPO",
                "model=tiny-bytes",
                f"tofu_data={data}",
                "forget_split=forget20",
                "retain_split=retain80",
                f"task_name=fuse_{fuse}",
                f"paths.root={tmp_path}",
                "trainer.args.max_steps=2",
                "trainer.args.per_device_train_batch_size=2",
                "trainer.args.gradient_accumulation_steps=4",
                "trainer.args.logging_steps=1",
                f"trainer.fuse_accumulation={fuse}",
                "trainer.method_args.beta=0.05",
            ],
            "unlearn.yaml",
        )
        with caplog.at_level("INFO", logger="obliviate"):
            out = run_training(cfg)
        # the run log states the user's batch and accumulation, fused or not
        assert "per-device batch 2, accumulation 4, effective batch 8" in caplog.text, fuse
        lines = [
            dict(kv.split("=") for kv in line.split())
            for line in (out / "trainer_log.txt").read_text().splitlines()
        ]
        logs[fuse] = [ln for ln in lines if "loss" in ln]
    assert len(logs["true"]) == len(logs["2"]) == len(logs["false"]) == 2
    for fused in ("true", "2"):
        for a, b in zip(logs[fused], logs["false"], strict=True):
            for key in ("loss", "forget_loss", "retain_loss", "grad_norm"):
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4, abs=1e-5), key
    # the forget term is not saturated at beta=0.05, so this compares a real SimNPO loss
    assert float(logs["true"][0]["forget_loss"]) > 1e-3
    json.dumps(logs)
