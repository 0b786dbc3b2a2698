"""Padding collator. Padding is recorded in ``attention_mask`` and ``labels`` (-100), never
inferred later from the pad id (unless ``mask_id`` asks for open-unlearning's mask)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from obliviate.data.formatting import IGNORE_INDEX


def pad_batch(
    items: Sequence[dict[str, Any]], pad_id: int, side: str = "right", mask_id: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad ``input_ids``/``labels`` lists to the longest item. Returns (B, T) tensors.

    ``mask_id``: also hide every real token with this id from attention. open-unlearning's
    mask is ``input_ids != its pad id``, and its pad is the end-of-turn token for SmolLM2 and
    Llama-3, which closes every turn inside a prompt (obliviate.protocol).
    """
    longest = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), longest), dtype=torch.long)
    labels = torch.full((len(items), longest), IGNORE_INDEX, dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["input_ids"])
        sl = slice(0, n) if side == "right" else slice(longest - n, longest)
        ids[i, sl] = torch.as_tensor(it["input_ids"])
        mask[i, sl] = 1
        if "labels" in it:
            labels[i, sl] = torch.as_tensor(it["labels"])
    if mask_id is not None:
        mask &= (ids != mask_id).long()
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class PairCollator:
    """Collates ``{"forget": item, "retain": item, ...}`` dicts into one sub-batch per part.

    Extra per-item scalars (``index``, ``ref_logp``) become tensors of the part they belong to.
    """

    def __init__(self, pad_id: int, mask_id: int | None = None):
        self.pad_id = pad_id
        self.mask_id = mask_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in features[0]:
            items = [f[part] for f in features]
            batch = pad_batch(items, self.pad_id, mask_id=self.mask_id)
            for key in items[0]:
                if key not in ("input_ids", "labels"):
                    batch[key] = torch.as_tensor([it[key] for it in items])
            out[part] = batch
        return out
