"""Data order: DistributedSampler semantics per epoch, disjoint rank shares, SIB-CL surrogate mixing."""

import torch

from photossl.training.batches import BatchPlan, rank_order


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert torch.equal(rank_order(50, 3, 7, 0, 1), rank_order(50, 3, 7, 0, 1))
    assert not torch.equal(rank_order(50, 3, 7, 0, 1), rank_order(50, 4, 7, 0, 1))
    assert sorted(rank_order(50, 3, 7, 0, 1).tolist()) == list(range(50))


def test_ranks_share_an_epoch_without_overlap():
    plans = [BatchPlan(40, 0, 5, 0, seed=1, rank=r, world=2) for r in range(2)]
    batches = [p.batches(0) for p in plans]
    assert plans[0].steps_per_epoch == 4 and all(len(b) == 4 for b in batches)
    seen = [i for rank in batches for batch in rank for i in batch]
    assert len(seen) == len(set(seen)) == 40


def test_surrogate_cells_fill_their_share_of_every_batch():
    plan = BatchPlan(n_main=30, n_surrogate=7, main_per_rank=6, surrogate_per_rank=2, seed=0, rank=0, world=1)
    batches = plan.batches(2)
    assert len(batches) == 5 and all(len(b) == 8 for b in batches)
    main = [i for b in batches for i in b[:6]]
    surrogate = [i for b in batches for i in b[6:]]
    assert sorted(main) == list(range(30))  # every dataset cell once per epoch
    assert all(30 <= i < 37 for i in surrogate)  # surrogate cells are indexed after the dataset's
    assert set(surrogate) == set(range(30, 37))  # the 10 surrogate slots cycle through all 7 cells
    assert plan.batches(2) == batches and plan.batches(3) != batches
