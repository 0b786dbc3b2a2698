"""open-unlearning's micro-batches over several epochs as one stream (``trainer.protocol=
open-unlearning``, flag ``epochs_as_one_stream``).

transformers 4.45 (open-unlearning's pin) counts micro-batches across epochs and steps the
optimizer after every ``gradient_accumulation_steps`` of them, so when an epoch's micro-batches
are not a multiple of it, the leftovers are summed into the next epoch's first step; it takes
floor(micro-batches / accumulation) steps per epoch. transformers 5 closes every epoch with a
short step instead. Handing transformers 5 all epochs as one stream of micro-batches, each
epoch's own, with ``max_steps`` set to open-unlearning's count, gives open-unlearning's steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochStream(Sampler[list[int]]):
    """The micro-batches of ``epochs`` epochs, one after the other. Epoch e is the permutation
    ``randperm(rows, seed + e)`` that the seeded sampler of either transformers version draws,
    cut into batches of ``batch_size`` (the last one short).

    Before each epoch after the first, one draw is taken from torch's global generator: the one
    the new data-loader iterator of that epoch takes there (its base seed), so that whatever
    else draws from it (open-unlearning's retain pairing) sees the same sequence.
    """

    def __init__(self, rows: int, batch_size: int, epochs: int, seed: int):
        self.rows, self.batch_size, self.epochs, self.seed = rows, batch_size, epochs, seed

    def __len__(self) -> int:
        return self.epochs * math.ceil(self.rows / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for epoch in range(self.epochs):
            if epoch:
                torch.empty((), dtype=torch.int64).random_()
            g = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.rows, generator=g).tolist()
            for i in range(0, self.rows, self.batch_size):
                yield order[i : i + self.batch_size]


def open_unlearning_steps(micro_batches: int, accumulation: int, epochs: float) -> int:
    """transformers 4.45's optimizer steps for ``epochs`` epochs of ``micro_batches``."""
    return math.ceil(epochs * max(micro_batches // accumulation, 1))
