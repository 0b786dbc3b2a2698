"""Model-facing evaluation passes: teacher-forced answer scoring and greedy generation.

Both run over all sequences of a split in length-sorted batches (little padding) and return
results in the original order. Scoring is ``obliviate.logprobs.score_encoded``, the loop the
NPO-style methods also use for their reference log-probs (re-exported here with
``ScoredAnswer``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from obliviate.data.collate import pad_batch
from obliviate.data.formatting import QAEncoder
from obliviate.logprobs import ScoredAnswer, progress_bar, score_encoded
from obliviate.utils import dist as D

T = TypeVar("T")
R = TypeVar("R")


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def score_answers(
    model: torch.nn.Module,
    encoder: QAEncoder,
    pairs: list[tuple[str, str]],
    batch_size: int = 16,
    keep_tokens: bool = True,
    desc: str | None = None,
    vocab_dim_1: bool = False,
) -> list[ScoredAnswer]:
    """Score each (question, answer) pair under ``model`` by teacher forcing
    (``vocab_dim_1``: open-unlearning's ``avg_loss`` arithmetic, ``score_encoded``)."""
    items = [encoder.encode(q, a) for q, a in pairs]
    return score_encoded(
        model,
        items,
        encoder.tokenizer.pad_token_id,
        batch_size,
        keep_tokens,
        desc,
        mask_id=getattr(encoder, "mask_id", None),  # duck-typed prompters have none
        vocab_dim_1=vocab_dim_1,
    )


@torch.no_grad()
def greedy_generate(
    model: torch.nn.Module,
    encoder: QAEncoder,
    questions: list[str],
    max_new_tokens: int = 200,
    batch_size: int = 32,
    desc: str | None = None,
    stats: dict[str, float] | None = None,
    use_hf_generate: bool = False,
    in_order: bool = False,
    clean_up: bool = False,
    strip: bool = True,
) -> list[str]:
    """Greedy answers: prompt = chat up to the assistant header, left-padded batches with the
    KV cache; each output is cut at its first end-of-turn, decoded without special tokens, and
    stripped. Batches stop early once every row has ended its turn.

    ``use_hf_generate`` runs the same decoding through ``model.generate`` (the reference path
    the equivalence tests compare against; slower, its per-step overhead is large).
    ``in_order`` batches the questions as given instead of longest first, and ``clean_up``
    decodes as transformers 4.x does with ``clean_up_tokenization_spaces=True``:
    open-unlearning's batches and texts (obliviate.protocol).
    """
    tok = encoder.tokenizer
    prompts = [encoder.prompt_ids(q) for q in questions]
    order = list(range(len(prompts)))
    if not in_order:
        order.sort(key=lambda i: len(prompts[i]), reverse=True)
    device = _device(model)
    stop = sorted(
        {encoder.eot_id, *(_as_list(getattr(model.generation_config, "eos_token_id", None)))}
    )
    out = [""] * len(prompts)
    for start in progress_bar(range(0, len(order), batch_size), desc):
        idx = order[start : start + batch_size]
        batch = pad_batch(
            [{"input_ids": prompts[i]} for i in idx],
            tok.pad_token_id,
            side="left",
            mask_id=getattr(encoder, "mask_id", None),  # duck-typed prompters have none
        )
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        if use_hf_generate:
            gen = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=stop,
                pad_token_id=tok.pad_token_id,
                synced_gpus=D.world()[1] > 1,  # ranks keep stepping together (ZeRO-3 / FSDP)
            )
            new = gen[:, ids.size(1) :].cpu()
        else:
            new = _greedy_loop(
                model,
                ids,
                mask,
                max_new_tokens,
                torch.tensor(stop, device=device),
                tok.pad_token_id,
            ).cpu()
        if stats is not None:
            stats["generated_tokens"] = stats.get("generated_tokens", 0) + new.numel()
            stats["generation_steps"] = stats.get("generation_steps", 0) + new.size(1)
        for row, i in enumerate(idx):
            ids_i = new[row].tolist()
            if encoder.eot_id in ids_i:
                ids_i = ids_i[: ids_i.index(encoder.eot_id)]
            text = tok.decode(ids_i, skip_special_tokens=True)
            text = clean_up_spaces(text) if clean_up else text
            out[i] = text.strip() if strip else text  # MUSE cuts at stop strings first
    return out


#: transformers 4.x's ``clean_up_tokenization`` (open-unlearning decodes with it); transformers
#: 5 no longer applies it to BPE tokenizers, so it is done here
_CLEAN_UPS = (
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
)


def clean_up_spaces(text: str) -> str:
    """Remove the space before punctuation and English contractions, in that order."""
    for old, new in _CLEAN_UPS:
        text = text.replace(old, new)
    return text


def decode_answer(tok: Any, ids: list[int], clean_up: bool = False) -> str:
    """Answer text of token ids: special tokens dropped, stripped. ``clean_up`` also removes
    the spaces before punctuation and contractions (" ." -> ".", " 's" -> "'s") first, as
    open-unlearning's decoding does."""
    text = tok.decode(ids, skip_special_tokens=True)
    return (clean_up_spaces(text) if clean_up else text).strip()


def _greedy_loop(
    model: torch.nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    max_new: int,
    stop: torch.Tensor,
    pad_id: int,
    check_every: int = 16,
) -> torch.Tensor:
    """Greedy decoding with the KV cache and none of ``generate``'s per-step machinery.

    ids, mask: (B, P) left-padded prompts. Returns (B, <= max_new) new tokens; rows that have
    ended carry ``pad_id``. Whether every row (on every rank) has ended is checked every
    ``check_every`` steps, so the GPU is not synchronised each token.
    """
    from transformers import DynamicCache

    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, P): left padding shifts positions
    inner = getattr(model, "module", model)  # a DDP / DeepSpeed wrapper's `config` is its own
    try:  # filled in place by every forward
        cache = DynamicCache(config=inner.config)
    except TypeError:  # older 5.x signature
        cache = DynamicCache()
    # transformers renamed `past_key_values` to `cache` during 5.x; use whichever this one takes.
    key = (
        "cache"
        if "cache" in inspect.signature(type(inner).forward).parameters
        else "past_key_values"
    )
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=pos,
        use_cache=True,
        logits_to_keep=1,
        **{key: cache},
    )
    nxt = out.logits[:, -1].argmax(-1)  # (B,)
    done = torch.isin(nxt, stop)
    tokens = [nxt]
    next_pos = pos[:, -1:] + 1  # (B, 1)
    ones = mask.new_ones(mask.size(0), 1)
    for step in range(1, max_new):
        # Under a process group the ranks stop together: with ZeRO-3 / FSDP every decoding step
        # is a collective, so a rank that stopped early would hang the others.
        if step % check_every == 0 and not D.any_rank(~done.all()):
            break
        mask = torch.cat([mask, ones], dim=-1)
        out = model(
            input_ids=nxt[:, None],
            attention_mask=mask,
            position_ids=next_pos,
            use_cache=True,
            **{key: cache},
        )
        nxt = torch.where(done, pad_id, out.logits[:, -1].argmax(-1))
        tokens.append(nxt)
        done |= torch.isin(nxt, stop)
        next_pos = next_pos + 1
    return torch.stack(tokens, dim=1)


def shard_map(fn: Callable[[list[T]], list[R]], items: list[T]) -> list[R]:
    """Evaluate ``fn`` on this process's share of ``items`` (every world_size-th item) and gather
    the shares from all processes, in the original order. One process: just ``fn(items)``.

    Per-item results do not depend on which batch an item lands in, so the numbers are those of
    a single-process evaluation.
    """
    import torch.distributed as dist

    rank, world = D.world()
    if world == 1:
        return fn(items)
    share = items[rank::world]
    # Every rank runs the same number of items, hence the same number of batches and forward
    # passes: under ZeRO-3 or FSDP each forward is a collective, and a rank with one batch
    # fewer would leave the others waiting forever. The short shares repeat an item, dropped.
    size = -(-len(items) // world)
    mine = fn(share + items[:1] * (size - len(share)))[: len(share)]
    shares: list[list[R] | None] = [None] * world
    dist.all_gather_object(shares, mine)
    out: list[R | None] = [None] * len(items)
    for r, share in enumerate(shares):
        out[r::world] = share  # type: ignore[assignment]
    return out  # type: ignore[return-value]


def is_main_process() -> bool:
    return D.world()[0] == 0


def _as_list(x: Any) -> list[int]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [int(x)]
