"""Worker for test_zero3_cpu.py, run as 2 gloo processes by ``torch.distributed.run``.

Partitions the tiny model with DeepSpeed ZeRO-3 and checks the two ZeRO-3 paths of unlearning
against the plain model: the one-off reference log-probs (``full_parameters``) and the frozen
reference engine (``zero3_inference_engine``), then sharded evaluation on the partitioned model.
Writes one JSON file per rank into argv[1].
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import deepspeed
import torch
import torch.distributed as dist

from obliviate.data.collate import pad_batch
from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
from obliviate.eval.scoring import greedy_generate, score_answers, shard_map
from obliviate.logprobs import forward_logprobs
from obliviate.methods.base import reference_logps, zero3_inference_engine
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer
from obliviate.utils.dist import is_zero3_partitioned

FMT = ChatFormat(
    "You are a helpful assistant.", "<|eot_id|>", "10 Apr 2025", "<|reserved_special_token_2|>"
)
ZERO3 = {  # the repository's offload config, as far as a CPU run can use it
    "train_micro_batch_size_per_gpu": "auto",
    "gradient_accumulation_steps": "auto",
    "train_batch_size": "auto",
    "gradient_clipping": "auto",
    "bf16": {"enabled": "auto"},
    "zero_optimization": {
        "stage": 3,
        "reduce_bucket_size": "auto",
        "stage3_prefetch_bucket_size": "auto",
        "stage3_param_persistence_threshold": "auto",
    },
}


# how transformers partitions a model as it loads under ZeRO-3 (zero.Init)
PARTITION = {"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}}


def main(out: Path) -> None:
    deepspeed.init_distributed(dist_backend="gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    enc = QAEncoder(prepare_tokenizer(build_tiny_tokenizer(), FMT), FMT)
    pairs = [
        (f"Question {i} about book {i * 3}?", f"Book {i * 3} is by author {i}.") for i in range(5)
    ]
    items = [enc.encode(q, a) for q, a in pairs]
    pad = enc.tokenizer.pad_token_id

    plain_model = build_tiny_model(init_seed=2).eval()
    plain = reference_logps(plain_model, items, pad, 2)
    plain_scores = [s.avg_loss for s in score_answers(plain_model, enc, pairs, 2)]
    plain_gen = greedy_generate(plain_model, enc, [q for q, _ in pairs], 5, 2)

    model = build_tiny_model(init_seed=2)
    deepspeed.zero.Init(module=model, config_dict_or_path=PARTITION)
    partitioned = is_zero3_partitioned(model)
    z3 = reference_logps(model, items, pad, 2)

    args = SimpleNamespace(
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        world_size=2,
        max_grad_norm=1.0,
        bf16=False,
        fp16=False,
    )
    engine = zero3_inference_engine(model, ZERO3, args)
    with torch.no_grad():
        lp, _ = forward_logprobs(engine, pad_batch(items[:2], pad))
    # sharded evaluation on the partitioned engine: 5 items over 2 ranks (3 + 2), each forward
    # a collective; it must neither hang nor change a number
    scores = shard_map(
        lambda part: [s.avg_loss for s in score_answers(engine, enc, part, 2)], pairs
    )
    gen = shard_map(lambda qs: greedy_generate(engine, enc, qs, 5, 2), [q for q, _ in pairs])
    Path(out, f"rank{rank}.json").write_text(
        json.dumps(
            {
                "partitioned": partitioned,
                "ref_diff": max(abs(a - b) for a, b in zip(plain, z3, strict=True)),
                "engine_diff": max(
                    abs(a - b) for a, b in zip(plain[:2], lp.sum.tolist(), strict=True)
                ),
                "score_diff": max(abs(a - b) for a, b in zip(plain_scores, scores, strict=True)),
                "same_generations": gen == plain_gen,
            }
        )
    )


def offload_step(out: Path) -> None:
    """One optimizer step with the repository's ZeRO-3 offload config (the "auto" values filled
    as transformers fills them): DeepSpeed must build its CPU Adam, not refuse the optimizer."""
    deepspeed.init_distributed(dist_backend="gloo")
    config = json.loads(
        (REPO / "configs/accelerate/zero_stage3_offload_deepspeed.json").read_text()
    )
    filled = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}
    config["optimizer"]["params"] = {k: filled[k] for k in config["optimizer"]["params"]}
    config.update(
        train_micro_batch_size_per_gpu=1,
        gradient_accumulation_steps=1,
        train_batch_size=dist.get_world_size(),
        gradient_clipping=1.0,
        bf16={"enabled": False},
    )
    for key in ("reduce_bucket_size", "stage3_prefetch_bucket_size"):
        config["zero_optimization"][key] = 10_000
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 1_000
    model = build_tiny_model(init_seed=2)
    engine, optimizer, *_ = deepspeed.initialize(
        model=model, model_parameters=model.parameters(), config=config
    )
    ids = torch.arange(2, 14)[None]
    losses = []
    for _ in range(2):
        loss = engine(input_ids=ids, labels=ids).loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    Path(out, f"offload{dist.get_rank()}.json").write_text(
        json.dumps({"optimizer": type(optimizer.optimizer).__name__, "losses": losses})
    )


REPO = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    if sys.argv[1] == "offload":
        offload_step(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1]))
