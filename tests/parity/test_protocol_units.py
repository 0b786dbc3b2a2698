"""The pieces of ``protocol=open-unlearning``, each against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import compose_config
from obliviate.data.collate import PairCollator, pad_batch
from obliviate.errors import ConfigError
from obliviate.eval import metrics as M
from obliviate.eval import ou_metrics as OU
from obliviate.logprobs import score_encoded, sequence_logprobs, vocab_dim_1_mean_nll
from obliviate.protocol import Protocol, protocol_from
from obliviate.training import preflight


def test_mask_id_hides_that_token_wherever_it_occurs():
    items = [{"input_ids": [7, 5, 8, 5]}, {"input_ids": [5, 9]}]
    plain = pad_batch(items, pad_id=0)
    assert plain["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    ou = pad_batch(items, pad_id=0, mask_id=5)  # 5 plays the end-of-turn = pad token
    assert ou["attention_mask"].tolist() == [[1, 0, 1, 0], [0, 1, 0, 0]]
    assert torch.equal(ou["input_ids"], plain["input_ids"])
    left = pad_batch(items, pad_id=0, side="left", mask_id=5)
    assert left["attention_mask"].tolist() == [[1, 0, 1, 0], [0, 0, 0, 1]]
    parts = PairCollator(pad_id=0, mask_id=5)([{"forget": it} for it in items])
    assert parts["forget"]["attention_mask"].tolist() == ou["attention_mask"].tolist()


def test_protocol_flags_and_mask_id():
    ob, ou = Protocol(), protocol_from("open-unlearning", "eval.protocol")
    assert ou.name == "open-unlearning" and ou.pad_id_masked
    assert ob.mask_id(42) is None and ou.mask_id(42) == 42
    assert ob.epsilon == 0.0 and ou.epsilon == 1e-10
    assert not ob.generation_per_split and ou.generation_per_split
    assert protocol_from(None, "eval.protocol") == ob


def test_extraction_strength_boundary():
    # last token wrong: no suffix matches; metrics.md says 0, open-unlearning's loop 1/N
    pred, lab = torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4])
    assert M.extraction_strength(pred, lab) == 0.0
    assert OU.extraction_strength(pred, lab) == pytest.approx(1 / 3)
    # first token wrong only: k = 1 in both, 1 - 1/3
    pred = torch.tensor([9, 2, 4])
    assert M.extraction_strength(pred, lab) == pytest.approx(2 / 3)
    assert OU.extraction_strength(pred, lab) == pytest.approx(2 / 3)
    assert OU.extraction_strength(lab, lab) == 1.0
    assert OU.extraction_strength(torch.tensor([]), torch.tensor([])) == 0.0


def test_open_unlearning_denominators():
    # P_true = 0.5, perturbed P = 0.25 and 0.0625: geometric mean 0.125, R = 0.125 / 0.5 = 0.25
    true, false = np.array([math.log(2)]), np.array([[math.log(4), math.log(16)]])
    r = OU.truth_ratio(true, false)
    assert r[0] == pytest.approx(0.125 / (0.5 + 1e-10), rel=1e-15)
    assert M.truth_ratio(true, false)[0] == pytest.approx(0.25, rel=1e-12)
    # a true answer with P = 1e-12: the 1e-10 dominates, R is 100x smaller than P_false / P_true
    tiny = np.array([-math.log(1e-12)])
    ratio = OU.truth_ratio(tiny, false)[0] / M.truth_ratio(tiny, false)[0]
    assert ratio == pytest.approx(1e-12 / (1e-12 + 1e-10), rel=1e-6)
    assert OU.truth_ratio_closer_to_1(np.array([4.0, 0.5])) == pytest.approx(
        (1 / (4 + 1e-10) + 0.5) / 2
    )
    # normalised: 0.5 / (0.5 + 0.25 + 0.0625)
    assert OU.normalised_probability(true, false)[0] == pytest.approx(0.5 / 0.8125)


def test_bad_protocol_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer.protocol='OU'.*obliviate, open-unlearning"):
        preflight(
            compose_config(
                [
                    "model=tiny-bytes",
                    "task_name=t",
                    "tofu_data=builtin",
                    "trainer.protocol=OU",
                    f"paths.output_dir={tmp_path / 'run'}",
                ]
            )
        )


def test_clean_up_spaces_is_transformers_4s():
    from obliviate.eval.scoring import clean_up_spaces

    text = "He said , \"I do n't know .\" She 's here ; they 're not ! Why ?"
    assert clean_up_spaces(text) == "He said, \"I don't know.\" She's here ; they're not! Why?"
    assert clean_up_spaces("a ' b") == "a'b"  # the quote case of transformers 4's clean-up


def test_warmup_steps_open_unlearning_floors_the_rows():
    """warmup_epochs=1, 40 rows at 3 x 2 per optimizer step: 40 / 6 = 6.67 steps; obliviate
    counts the epoch's 7 optimizer steps (the last one partial), open-unlearning floors to 6.
    0.3 epochs of 20 rows at 4 per step: obliviate round(0.3 x 5) = 2, open-unlearning
    floor(6 / 4) = 1."""
    from obliviate.config import warmup_steps

    ob, ou = (
        compose_config(["model=tiny", f"trainer.protocol={p}"], "unlearn.yaml")
        for p in ("obliviate", "open-unlearning")
    )
    assert warmup_steps(ob, 1.0, 40, 6) == 7
    assert warmup_steps(ou, 1.0, 40, 6) == 6
    assert warmup_steps(ob, 0.3, 20, 4) == 2
    assert warmup_steps(ou, 0.3, 20, 4) == 1
    assert warmup_steps(ou, 1.0, 48, 6) == warmup_steps(ob, 1.0, 48, 6) == 8


def test_retain_pairs_from_the_global_generator():
    """open-unlearning's pairing: one torch.randint(0, n_retain, (1,)) per read of an item, from
    the global generator, so the same seed gives the same draws and a re-read draws anew."""
    from obliviate.data.datasets import ForgetRetainDataset

    forget = [{"index": i} for i in range(4)]
    retain = [{"index": j} for j in range(3)]
    ds = ForgetRetainDataset(forget, retain, seed=0, global_rng=True)
    torch.manual_seed(123)
    got = [ds[i]["retain"]["index"] for i in (2, 0, 3, 1, 2)]
    torch.manual_seed(123)
    want = [int(torch.randint(0, 3, (1,)).item()) for _ in range(5)]
    assert got == want
    seeded = ForgetRetainDataset(forget, retain, seed=0)  # obliviate: fixed per epoch
    torch.manual_seed(1)
    first = [seeded[i]["retain"]["index"] for i in range(4)]
    torch.manual_seed(2)
    assert [seeded[i]["retain"]["index"] for i in range(4)] == first


def test_epoch_end_mismatch_is_named_only_where_it_happens():
    from obliviate.protocol import NAMED, epoch_end_mismatch

    ou = NAMED["open-unlearning"]
    # 40 rows at 3 per micro-batch: 14 micro-batches, accumulation 2 divides them
    assert epoch_end_mismatch(ou, 40, 3, 2) is None
    # 20 rows at 3: 7 micro-batches, 3 steps + 1 carried over there, 4 steps here
    msg = epoch_end_mismatch(ou, 20, 3, 2)
    assert (
        "7 micro-batches" in msg and "takes 3 optimizer steps" in msg and "obliviate takes 4" in msg
    )
    assert epoch_end_mismatch(NAMED["obliviate"], 20, 3, 2) is None


def test_epoch_stream_is_each_epochs_batches_in_turn():
    """7 rows at 3 per micro-batch, 2 epochs: epoch e is randperm(7) seeded seed + e, cut into
    3 + 3 + 1; one global draw between the epochs (the new loader iterator's base seed)."""
    from obliviate.data.stream import EpochStream, open_unlearning_steps

    stream = EpochStream(rows=7, batch_size=3, epochs=2, seed=5)
    torch.manual_seed(0)
    batches = list(stream)
    after = torch.rand(1)
    want = []
    for e in (0, 1):
        order = torch.randperm(7, generator=torch.Generator().manual_seed(5 + e)).tolist()
        want += [order[0:3], order[3:6], order[6:7]]
    assert batches == want and len(stream) == 6
    torch.manual_seed(0)
    torch.empty((), dtype=torch.int64).random_()
    assert torch.equal(after, torch.rand(1))  # exactly one draw was taken
    # transformers 4.45: floor(micro-batches / accumulation) steps per epoch, at least 1
    assert open_unlearning_steps(7, 2, 2) == 6
    assert open_unlearning_steps(5, 4, 10) == 10
    assert open_unlearning_steps(3, 4, 2) == 2


def _exact_mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-(1/T) sum_t log softmax(z_t)[y_{t+1}] over the labelled tokens, in float64."""
    logp = torch.log_softmax(logits.double(), -1)[:, :-1]  # (B, T-1, V)
    target, keep = labels[:, 1:], labels[:, 1:] != -100
    rows = [-logp[b][keep[b]].gather(-1, target[b][keep[b]][:, None]).mean() for b in range(2)]
    return torch.stack(rows)


def test_vocab_dim_1_nll_is_open_unlearnings_float32_arithmetic():
    """Same formula as obliviate's mean NLL, but with a SmolLM2-sized vocabulary the CPU float32
    log-softmax over dim 1 of (B, V, T) loses ~5e-5 nats per token against the float64 value,
    while the last-dimension kernel obliviate uses stays within ~1e-6."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 12, 49152, generator=g) * 3  # (B, T, V)
    labels = torch.randint(0, 49152, (2, 12), generator=g)
    labels[:, :4] = -100  # the prompt
    exact = _exact_mean_nll(logits, labels)
    ours = -sequence_logprobs(logits, labels).mean
    theirs = vocab_dim_1_mean_nll(logits, labels)
    assert torch.allclose(ours.double(), exact, atol=1e-5, rtol=0)
    assert torch.allclose(theirs.double(), exact, atol=2e-4, rtol=0)  # same quantity...
    assert ((theirs.double() - exact).abs() > 1e-5).all()  # ...off by the kernel's order
    # open-unlearning's own expression (evals/metrics/utils.py evaluate_probability)
    nll = torch.nn.CrossEntropyLoss(ignore_index=-100, reduction="none")(
        logits[..., :-1, :].contiguous().transpose(-1, -2), labels[..., 1:].contiguous()
    )
    assert torch.equal(theirs, nll.sum(-1) / (labels != -100).sum(-1))


def test_score_encoded_takes_the_avg_loss_from_the_flag():
    """Under ``vocab_dim_1`` only ``avg_loss`` changes: the token log-probs (min-k%) stay."""
    from obliviate.models.tiny import build_tiny_model

    model = build_tiny_model(tokenizer="bytes", init_seed=0).eval()
    items = [{"input_ids": [1, 2, 3, 4, 5], "labels": [-100, -100, 3, 4, 5]}]
    plain = score_encoded(model, items, pad_id=0)[0]
    ou = score_encoded(model, items, pad_id=0, vocab_dim_1=True)[0]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([items[0]["input_ids"]])).logits
    expected = vocab_dim_1_mean_nll(logits, torch.tensor([items[0]["labels"]]))
    assert ou.avg_loss == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(ou.token_logp, plain.token_logp)


def test_muse_texts_tokenised_as_open_unlearning_does():
    """The byte tokenizer adds no BOS itself: open-unlearning's texts start without one, and
    with no prefix the first text token is unlabelled; obliviate puts BOS (256) first."""
    from obliviate.eval.muse_eval import TextPrompter, knowmem_reference, text_item
    from obliviate.models.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer("bytes")
    ours, theirs = TextPrompter(tok), TextPrompter(tok, by_tokenizer=True)
    assert ours.prompt_ids("ab") == [256, 97, 98] and theirs.prompt_ids("ab") == [97, 98]
    assert text_item(ours, "abc", 2) == {"input_ids": [256, 97, 98], "labels": [-100, 97, 98]}
    assert text_item(theirs, "abc", 2) == {"input_ids": [97, 98], "labels": [-100, 98]}
    # knowmem ground truth: conversation + EOS decoded, prompt removed, transformers 4 clean-up
    assert knowmem_reference(theirs, "Q?\nAnswer: ", "Bob , Ann .") == "Bob, Ann."


def test_tofu_min_k_drops_the_answers_end_of_turn_under_the_protocol():
    """Answer tokens with log-probs -0.1, -2.0, -0.5 and the end-of-turn's -3.0, k = 0.4.
    obliviate: int(4 x 0.4) = 1 lowest of all four, -3.0 -> score 3.0. open-unlearning drops the
    last labelled token: int(3 x 0.4) = 1 lowest of -0.1, -2.0, -0.5 -> 2.0. A holdout answer
    scoring 2.5 then ranks between the two: AUC 0 (obliviate) vs 1 (open-unlearning)."""
    from obliviate.eval.tofu_eval import _privacy_metrics
    from obliviate.logprobs import ScoredAnswer
    from obliviate.protocol import NAMED

    def item(logps: list[float]) -> ScoredAnswer:
        lp = torch.tensor(logps, dtype=torch.float64)
        ids = torch.zeros(len(logps), dtype=torch.long)
        return ScoredAnswer(-float(lp.mean()), float(lp.sum()), lp, ids, ids)

    forget, holdout = [item([-0.1, -2.0, -0.5, -3.0])], [item([-2.5, -0.2, -2.5])]
    for name, score, auc in (("obliviate", 3.0, 0.0), ("open-unlearning", 2.0, 1.0)):
        mia = _privacy_metrics(forget, holdout, None, NAMED[name])["mia_min_k"]
        assert mia["forget"]["value_by_index"]["0"]["score"] == pytest.approx(score), name
        assert mia["holdout"]["value_by_index"]["0"]["score"] == pytest.approx(2.5), name
        assert mia["agg_value"] == auc, name
