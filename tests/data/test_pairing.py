"""Forget/retain pairing: seeded, redrawn each epoch, free of global RNG, world-size invariant."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from obliviate.data.datasets import ForgetRetainDataset

N_FORGET, N_RETAIN = 40, 360


def make(seed: int = 0, n_forget: int = N_FORGET, n_retain: int = N_RETAIN) -> ForgetRetainDataset:
    forget = [{"name": f"f{i}"} for i in range(n_forget)]
    retain = [{"name": f"r{j}"} for j in range(n_retain)]
    return ForgetRetainDataset(forget, retain, seed=seed)


def pairing(ds: ForgetRetainDataset, indices) -> dict[str, str]:
    """forget item -> retain item, as a DataLoader would fetch them."""
    return {ds[i]["forget"]["name"]: ds[i]["retain"]["name"] for i in indices}


def test_forget_drives_the_epoch_and_keeps_order():
    ds = make()
    assert len(ds) == N_FORGET
    assert [ds[i]["forget"]["name"] for i in range(N_FORGET)] == [f"f{i}" for i in range(N_FORGET)]


def test_same_seed_same_pairing_across_instances():
    assert pairing(make(seed=3), range(N_FORGET)) == pairing(make(seed=3), range(N_FORGET))


def test_different_seed_different_pairing():
    assert pairing(make(seed=3), range(N_FORGET)) != pairing(make(seed=4), range(N_FORGET))


def test_pairing_changes_with_the_epoch_and_comes_back():
    ds = make()
    e0 = pairing(ds, range(N_FORGET))
    ds.set_epoch(1)
    e1 = pairing(ds, range(N_FORGET))
    assert e1 != e0
    # With 360 retain items, the chance that more than a few of 40 pairs repeat is negligible.
    assert sum(e0[k] == e1[k] for k in e0) < 5
    ds.set_epoch(0)
    assert pairing(ds, range(N_FORGET)) == e0


def test_retain_items_are_distinct_within_an_epoch_when_retain_is_larger():
    idx = make().retain_indices(0)
    assert idx.shape == (N_FORGET,)
    assert len(set(idx.tolist())) == N_FORGET
    assert int(idx.min()) >= 0 and int(idx.max()) < N_RETAIN


def test_small_retain_split_is_sampled_with_replacement_in_range():
    ds = make(n_forget=10, n_retain=3)
    idx = ds.retain_indices(0).tolist()
    assert len(idx) == 10 and set(idx) <= {0, 1, 2}
    assert idx == make(n_forget=10, n_retain=3).retain_indices(0).tolist()


def test_no_global_rng_is_used_or_consulted():
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    ds = make(seed=5)
    first = pairing(ds, range(N_FORGET))
    ds.set_epoch(2)
    pairing(ds, range(N_FORGET))
    assert torch.equal(torch.random.get_rng_state(), state), "the global torch RNG moved"
    # ...and the global RNG's state does not influence the pairing.
    torch.manual_seed(999)
    torch.rand(17)
    assert pairing(make(seed=5), range(N_FORGET)) == first


def test_two_ranks_see_different_retain_items_and_together_the_one_process_pairing():
    # Each process builds its own dataset; a distributed sampler gives rank r the forget
    # indices r::2. The global RNG differs between the "processes" on purpose.
    torch.manual_seed(0)
    rank0 = pairing(make(seed=7), range(0, N_FORGET, 2))
    torch.manual_seed(1)
    rank1 = pairing(make(seed=7), range(1, N_FORGET, 2))
    assert set(rank0.values()).isdisjoint(rank1.values()), "both ranks drew the same retain items"
    assert rank0.keys().isdisjoint(rank1.keys())
    one_process = pairing(make(seed=7), range(N_FORGET))
    assert {**rank0, **rank1} == one_process


def test_world_size_invariance_in_a_later_epoch_with_a_shuffled_order():
    # Order of access (a shuffled sampler) must not matter either.
    order = torch.randperm(N_FORGET, generator=torch.Generator().manual_seed(11)).tolist()
    ranks = []
    for r in range(4):
        ds = make(seed=2)
        ds.set_epoch(3)
        ranks.append(pairing(ds, order[r::4]))
    ref = make(seed=2)
    ref.set_epoch(3)
    merged = {k: v for rank in ranks for k, v in rank.items()}
    assert merged == pairing(ref, range(N_FORGET))


def test_without_retain_items_only_forget_is_returned():
    ds = ForgetRetainDataset([{"name": "f0"}], None, seed=0)
    assert ds[0] == {"forget": {"name": "f0"}}


def test_epoch_callback_redraws_the_pairing_at_each_epoch():
    from transformers import TrainerState

    from obliviate.training import EpochCallback

    ds = make(seed=1)
    e0 = pairing(ds, range(N_FORGET))
    args = SimpleNamespace(
        per_device_train_batch_size=2, world_size=1, gradient_accumulation_steps=1
    )
    steps_per_epoch = math.ceil(N_FORGET / 2)
    state = TrainerState()
    # The epoch comes from the optimizer step, so a run resumed mid-epoch redraws the same pairing.
    for step, epoch in (
        (0, 0),
        (steps_per_epoch - 1, 0),
        (steps_per_epoch, 1),
        (steps_per_epoch + 1, 1),
    ):
        state.global_step = step
        EpochCallback(ds).on_epoch_begin(args, state, None)
        assert ds.epoch == epoch
    fresh = make(seed=1)
    fresh.set_epoch(1)
    assert pairing(ds, range(N_FORGET)) == pairing(fresh, range(N_FORGET)) != e0
