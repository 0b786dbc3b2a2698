"""The few facts about the process group that evaluation and training need."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def launched() -> tuple[int, int]:
    """(rank, world size) as the launcher (torchrun, ``accelerate launch``) set them in the
    environment; (0, 1) for a plain ``python`` run. Valid before any process group exists (e.g.
    to pick the one process that clears a run folder); after, ``world()`` says the same."""
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
    return rank, int(os.environ.get("WORLD_SIZE", "1"))


def world() -> tuple[int, int]:
    """(rank, world size) of the current process group; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def any_rank(flag: bool | torch.Tensor) -> bool:
    """True on every rank if ``flag`` is true on any rank (one tiny all-reduce)."""
    import torch.distributed as dist

    t = torch.as_tensor(flag, dtype=torch.int32).reshape(1)
    if world()[1] == 1:
        return bool(t.item())
    if dist.get_backend() == "nccl":
        t = t.to(torch.device("cuda", torch.cuda.current_device()))
    else:
        t = t.cpu()
    dist.all_reduce(t)
    return bool(t.item())


def is_zero3_partitioned(model: torch.nn.Module) -> bool:
    """Whether DeepSpeed ZeRO-3 has partitioned ``model``'s weights (each rank holds a slice)."""
    return any(hasattr(p, "ds_id") for p in model.parameters())


@contextlib.contextmanager
def full_parameters(model: torch.nn.Module) -> Iterator[None]:
    """Make a ZeRO-3 partitioned model's full weights present on every rank for a plain forward
    outside the DeepSpeed engine (e.g. the one-off reference pass before training). A no-op for
    any other model."""
    if not is_zero3_partitioned(model):
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
        yield
