"""Which samples each rank trains on in each step: the data order of epoch e is a function of (seed, e)
(``DistributedSampler`` semantics), so a resumed run draws the batches an uninterrupted one would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from photossl.errors import PhotosslError
from photossl.runtime import Runtime
from photossl.training.config import PretrainConfig
from photossl.training.methods import method_of
from photossl.training.sources import TrainingData


def rank_order(n: int, epoch: int, seed: int, rank: int, world: int) -> torch.Tensor:
    """This rank's share of epoch ``epoch``'s permutation, as DistributedSampler(shuffle, drop_last) draws it."""
    sampler = torch.utils.data.DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


@dataclass(frozen=True)
class BatchPlan:
    """How each rank cuts its batches: ``main`` pretraining cells then ``surrogate`` cells (index ``n_main + j``)."""

    n_main: int
    n_surrogate: int
    main_per_rank: int
    surrogate_per_rank: int
    seed: int
    rank: int
    world: int

    @property
    def steps_per_epoch(self) -> int:
        return (self.n_main // self.world) // self.main_per_rank

    def batches(self, epoch: int) -> list[list[int]]:
        main = rank_order(self.n_main, epoch, self.seed, self.rank, self.world)
        steps = self.steps_per_epoch
        main = main[: steps * self.main_per_rank].view(steps, self.main_per_rank)
        if self.surrogate_per_rank == 0:
            return main.tolist()
        need, parts, k = steps * self.surrogate_per_rank, [], 0
        while sum(len(p) for p in parts) < need:  # cycle through fresh permutations of the surrogate pool
            parts.append(rank_order(self.n_surrogate, epoch * 1009 + k, self.seed + 1, self.rank, self.world))
            k += 1
        surrogate = torch.cat(parts)[:need].view(steps, self.surrogate_per_rank) + self.n_main
        return torch.cat([main, surrogate], dim=1).tolist()


def make_batch_plan(config: PretrainConfig, data: TrainingData, runtime: Runtime) -> BatchPlan:
    """The plan of a resolved config on ``data``; batch sizes that do not divide as the run needs raise
    PhotosslError (the method's own rule included, e.g. CARE's whole chunks)."""
    world = runtime.world_size
    if config.batch_size % world:
        raise PhotosslError(f"batch_size {config.batch_size} is not divisible by the {world} processes")
    per_rank = config.batch_size // world
    n_surrogate = 0 if data.surrogate is None else int(data.surrogate.shape[0])
    surrogate = round(config.surrogate_fraction * per_rank) if n_surrogate else 0
    if n_surrogate and surrogate * world > n_surrogate:
        raise PhotosslError(f"the surrogate set has {n_surrogate} cells, fewer than {surrogate * world} per batch")
    main = per_rank - surrogate
    if main < 1:
        raise PhotosslError(f"surrogate_fraction {config.surrogate_fraction} leaves no dataset cells in a batch")
    method_of(config.spec).check_batch(config, per_rank)
    plan = BatchPlan(int(data.pretrain.shape[0]), n_surrogate, main, surrogate, config.seed, runtime.rank, world)
    if plan.steps_per_epoch < 1:
        raise PhotosslError(
            f"batch_size {config.batch_size} needs more than the {plan.n_main} pretraining samples "
            f"({main * world} dataset samples per step); lower --batch-size"
        )
    return plan


class Pool(torch.utils.data.Dataset):
    """In-memory samples; a batch is one gather (``__getitems__``), never a loop over samples."""

    def __init__(self, samples: torch.Tensor) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return self.samples.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.samples[index]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self.samples[torch.as_tensor(indices, dtype=torch.long)]


def _batch_identity(batch: torch.Tensor) -> torch.Tensor:
    return batch


def load_batches(pool: Pool, batches: list[list[int]], workers: int, pin: bool) -> Iterator[torch.Tensor]:
    """The batches of ``pool`` in order, gathered by ``workers`` DataLoader processes (0: in this one)."""
    return iter(torch.utils.data.DataLoader(
        pool, batch_sampler=batches, num_workers=workers, collate_fn=_batch_identity, pin_memory=pin
    ))
