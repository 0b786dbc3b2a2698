"""Evaluation sharded over 2 processes (gloo, CPU) gives the numbers of one process."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.eval.tofu_eval import EvalSettings, evaluate_model, summary
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

FMT = ChatFormat(
    "You are a helpful assistant.", "<|eot_id|>", "10 Apr 2025", "<|reserved_special_token_2|>"
)


def rows(n: int, tag: str, k: int) -> list[dict]:
    return [
        {
            "question": f"{tag} question number {i}: who wrote book {i * 7}?",
            "answer": f"Book {i * 7} was written by author {tag}{i}.",
            "paraphrased_answer": f"Author {tag}{i} wrote book {i * 7}.",
            "perturbed_answer": [f"Book {i * 7} was written by someone {j}." for j in range(k)],
        }
        for i in range(n)
    ]


DATA = {
    "forget": rows(5, "f", 3),
    "retain": rows(5, "r", 3),
    "real_authors": rows(3, "a", 2),
    "world_facts": rows(3, "w", 2),
}


def evaluate(calls: list[int] | None = None) -> dict:
    """The evaluation; ``calls`` (if given) receives the number of model forward passes."""
    torch.manual_seed(0)
    enc = QAEncoder(prepare_tokenizer(build_tiny_tokenizer(), FMT), FMT)
    model = build_tiny_model(init_seed=2)
    if calls is not None:
        calls.append(0)
        model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    settings = EvalSettings(
        forget_split="forget01",
        retain_split="retain99",
        model_name="tiny",
        max_new_tokens=6,
        batch_size=2,
        generation_batch_size=2,
        progress=False,
    )
    return evaluate_model(model, enc, DATA, settings)


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    calls: list[int] = []
    res = evaluate(calls)
    Path(f"{out}.calls{rank}").write_text(str(calls[0]))
    if rank == 0:
        Path(out).write_text(json.dumps(res, default=float))
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes each import torch/transformers: ~1 min on 2 cores
def test_two_process_evaluation_equals_one_process(tmp_path):
    mp.spawn(
        _worker, args=(2, str(tmp_path / "pg"), str(tmp_path / "two.json")), nprocs=2, join=True
    )
    two = json.loads((tmp_path / "two.json").read_text())
    # 5 forget items split 3 + 2, yet both ranks ran the same number of forward passes (under
    # ZeRO-3 / FSDP each one is a collective: a rank with fewer would hang the other)
    calls = [int((tmp_path / f"two.json.calls{r}").read_text()) for r in (0, 1)]
    assert calls[0] == calls[1] > 0, calls
    one = json.loads(json.dumps(evaluate(), default=float))
    for key, value in summary(one).items():
        other = summary(two)[key]
        assert (value is None and other is None) or math.isclose(
            value, other, rel_tol=1e-5, abs_tol=1e-7
        ), key
    # per-item values come back in the original order, not shard order
    assert (
        two["forget_Q_A_Prob"]["value_by_index"].keys()
        == one["forget_Q_A_Prob"]["value_by_index"].keys()
    )
    for i, v in one["forget_Q_A_Prob"]["value_by_index"].items():
        assert math.isclose(
            v["prob"], two["forget_Q_A_Prob"]["value_by_index"][i]["prob"], rel_tol=1e-5
        )
    gens = [v["generation"] for v in one["retain_Q_A_ROUGE"]["value_by_index"].values()]
    assert gens == [v["generation"] for v in two["retain_Q_A_ROUGE"]["value_by_index"].values()]
