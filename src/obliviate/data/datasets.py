"""Tokenised-once datasets for training: plain QA (finetuning) and forget/retain pairs."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from obliviate.data.formatting import QAEncoder


def encode_rows(
    encoder: QAEncoder, rows: list[dict[str, Any]], answer_key: str = "answer"
) -> list[dict[str, Any]]:
    """Tokenise every row once; ``index`` is the row's position in its split."""
    return [
        {**encoder.encode(row["question"], row[answer_key]), "index": i}
        for i, row in enumerate(rows)
    ]


class QADataset(Dataset):
    """Finetuning data: each item is ``{"train": encoded_item}``."""

    def __init__(self, items: list[dict[str, Any]]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"train": self.items[i]}


class ForgetRetainDataset(Dataset):
    """The forget set drives the epoch (TOFU's ``anchor: forget``); each forget item is paired
    with one retain item.

    The pairing for epoch ``e`` is a permutation drawn from a generator seeded with
    ``(seed, e)`` and indexed by the *forget index*. It never touches the global RNG, changes
    every epoch, repeats with the seed, and does not depend on the number of processes: ranks
    that hold different forget items therefore see different retain items, and a 2-process run
    sees exactly the pairs a 1-process run sees.

    ``alternate`` (optional, parallel to ``forget``): a second answer to each forget question,
    returned as the part ``"alternate"`` (IdkDPO's refusals).

    ``global_rng=True`` (``trainer.protocol=open-unlearning``): each read of an item draws its
    retain index uniformly, with replacement, from torch's global generator, as
    open-unlearning's dataset does; the pairs then depend on everything else that draws from it.
    """

    def __init__(
        self,
        forget: list[dict[str, Any]],
        retain: list[dict[str, Any]] | None,
        seed: int,
        alternate: list[dict[str, Any]] | None = None,
        global_rng: bool = False,
    ):
        if alternate is not None and len(alternate) != len(forget):
            raise ValueError(
                f"alternate has {len(alternate)} items but forget has {len(forget)}; they must pair up"
            )
        self.forget = forget
        self.retain = retain
        self.alternate = alternate
        self.seed = int(seed)
        self.global_rng = global_rng
        self.epoch = 0
        self._pairing: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.forget)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def retain_indices(self, epoch: int | None = None) -> torch.Tensor:
        """(len(forget),) retain index paired with each forget item in ``epoch``."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._pairing is not None and self._pairing[0] == epoch:
            return self._pairing[1]
        assert self.retain is not None
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        n_f, n_r = len(self.forget), len(self.retain)
        if n_r >= n_f:  # without replacement whenever the retain split is large enough
            idx = torch.randperm(n_r, generator=g)[:n_f]
        else:
            idx = torch.randint(n_r, (n_f,), generator=g)
        self._pairing = (epoch, idx)
        return idx

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {"forget": self.forget[i]}
        if self.alternate is not None:
            item["alternate"] = self.alternate[i]
        if self.retain is not None:
            item["retain"] = self.retain[self._retain_index(i)]
        return item

    def _retain_index(self, i: int) -> int:
        if self.global_rng:
            return int(torch.randint(0, len(self.retain), (1,)).item())
        return int(self.retain_indices()[i])
