"""lm-eval sharded over 2 processes (gloo, CPU) gives the numbers and records of one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from obliviate.data.builtin_wmdp import task_items
from obliviate.data.formatting import ChatFormat, prepare_tokenizer
from obliviate.eval.lm_eval_suite import LMEvalSuite
from obliviate.eval.lm_eval_tasks import write_mcq_task
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

TEMPLATE = {
    "system_prompt": "You are a helpful assistant.",
    "date_string": "10 Apr 2025",
    "end_of_turn": "<|eot_id|>",
    "pad_token": "<|reserved_special_token_2|>",
}


def evaluate(task_file: str) -> dict:
    """LMEvalSuite on the tiny model: summary and records (empty off the main process)."""
    cfg = OmegaConf.create(
        {
            "eval": {
                "lm_eval": {
                    "tasks": [task_file],
                    "batch_size": 2,
                    "num_fewshot": None,
                    "apply_chat_template": False,
                    "limit": None,
                }
            },
            "model": {"template": TEMPLATE},
        }
    )
    tok = prepare_tokenizer(build_tiny_tokenizer(), ChatFormat.from_config(TEMPLATE))
    res = LMEvalSuite(cfg).run(build_tiny_model(init_seed=3), tok)
    return {"summary": res.summary, "records": res.files["LMEval_EVAL.json"]}


def _worker(rank: int, world: int, init_file: str, task_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    res = evaluate(task_file)
    Path(f"{out}.{rank}").write_text(json.dumps(res))
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes each import torch, transformers and lm-eval
def test_two_process_lm_eval_equals_one_process(tmp_path):
    # 7 items: the ranks get 4 and 3, so lm-eval pads one rank's requests
    items = task_items("builtin_authors")[:7]
    task_file = str(write_mcq_task(tmp_path, "dist_authors", items, "contemporary authors"))
    out = str(tmp_path / "two.json")
    mp.spawn(_worker, args=(2, str(tmp_path / "pg"), task_file, out), nprocs=2, join=True)
    two = [json.loads(Path(f"{out}.{r}").read_text()) for r in (0, 1)]
    assert two[1] == {"summary": {}, "records": {}}  # results come back on rank 0 only

    one = evaluate(task_file)
    assert 0 < one["summary"]["dist_authors/acc"] < 1
    assert two[0]["summary"] == pytest.approx(one["summary"], rel=1e-6)
    recs = {r["doc_id"]: r for r in two[0]["records"]["dist_authors"]["dist_authors"]}
    assert sorted(recs) == list(range(7))  # every item once, none twice
    for rec in one["records"]["dist_authors"]["dist_authors"]:
        got = [x[0] for x in recs[rec["doc_id"]]["filtered_resps"]]
        assert got == pytest.approx([x[0] for x in rec["filtered_resps"]], abs=1e-5)
