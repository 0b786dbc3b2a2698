"""Relearning's pieces: the seeded sample and batches, and its loss against an independent
computation (one plain forward pass, log-softmax, the answer tokens picked by hand)."""

from __future__ import annotations

import copy

import pytest
import torch

from obliviate.attacks.relearn import batch_plan, finetune, relearn_loss
from obliviate.attacks.relearn_data import sample_indices
from obliviate.data.collate import pad_batch
from obliviate.models.tiny import BYTE_EOT_ID, BYTE_PAD_ID, build_tiny_model


def test_the_sample_is_a_seeded_fraction_and_the_batches_cover_it_pass_by_pass():
    assert sample_indices(40, 0.25, seed=0) == sample_indices(40, 0.25, seed=0)
    assert sample_indices(40, 0.25, seed=0) != sample_indices(40, 0.25, seed=1)
    picked = sample_indices(40, 0.25, seed=0)
    assert len(picked) == 10 and picked == sorted(set(picked)) and min(picked) >= 0
    assert len(sample_indices(3, 0.01, seed=0)) == 1  # at least one item
    plan = batch_plan(10, steps=5, batch_size=4, seed=3)
    assert plan == batch_plan(10, steps=5, batch_size=4, seed=3)
    assert [len(b) for b in plan] == [4] * 5
    flat = [i for b in plan for i in b]
    assert sorted(flat[:10]) == list(range(10))  # the first pass shows every item once


def byte_item(prompt: bytes, answer: bytes) -> dict[str, list[int]]:
    """tiny-bytes ids are the bytes: prompt unlabelled, answer + end-of-turn labelled."""
    ans = list(answer) + [BYTE_EOT_ID]
    return {"input_ids": list(prompt) + ans, "labels": [-100] * len(prompt) + ans}


ITEMS = [
    byte_item(b"Q: who wrote it? A:", b" Ada"),
    byte_item(b"Q: where? A:", b" in Oslo, 1961"),
]


def independent_mean_nll(model: torch.nn.Module, items: list[dict[str, list[int]]]) -> float:
    """Each item alone, unpadded: -log softmax(logits[t-1])[token t] over its answer tokens,
    summed over both items and divided by their total answer-token count."""
    total, count = 0.0, 0
    with torch.no_grad():
        for it in items:
            ids = torch.tensor([it["input_ids"]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
            for t, label in enumerate(it["labels"]):
                if label != -100:
                    total -= float(logp[t - 1, label])
                    count += 1
    return total / count


def test_relearn_loss_is_the_mean_nll_over_every_answer_token_of_the_batch():
    model = build_tiny_model(tokenizer="bytes", init_seed=1)
    batch = pad_batch(ITEMS, BYTE_PAD_ID)
    got = float(relearn_loss(model, batch))
    assert got == pytest.approx(independent_mean_nll(model, ITEMS), rel=1e-5)
    # the items have 5 and 15 answer tokens: a mean of per-item means would differ
    per_item = [independent_mean_nll(model, [it]) for it in ITEMS]
    assert abs(got - sum(per_item) / 2) > 1e-4


def test_finetune_logs_the_loss_of_each_batch_before_its_step_and_changes_the_weights():
    model = build_tiny_model(tokenizer="bytes", init_seed=1)
    before = copy.deepcopy(model)
    losses = finetune(model, ITEMS, [[0, 1], [1, 0]], lr=1e-2, pad_id=BYTE_PAD_ID)
    assert losses[0] == pytest.approx(independent_mean_nll(before, ITEMS), rel=1e-5)
    assert losses[1] < losses[0]  # one step on the same two items lowers their loss
    changed = [
        n
        for (n, p), q in zip(model.named_parameters(), before.parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert len(changed) == len(list(model.parameters()))
