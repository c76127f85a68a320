"""Where and how a training loop runs: the device, mixed precision, torch's CPU threads, the process group that
``torchrun`` describes, and the random streams every loop seeds (versions are recorded by
:func:`photossl.provenance.software_versions`, seeds derived by :func:`photossl.provenance.derive_seed`)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from photossl.errors import PhotosslError
from photossl.provenance import derive_seed


# ------------------------------------------------------------------------------------------------- device, precision
def select_device(choice: str, local_rank: int = 0) -> torch.device:
    """'auto': CUDA (the local rank's GPU) when present, else CPU; 'cuda' without a GPU raises PhotosslError."""
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if choice == "cuda":
        raise PhotosslError("device 'cuda' was requested but no CUDA GPU is available (use --device cpu or auto)")
    return torch.device("cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA: 'auto' picks bf16 where supported, else fp16; the CPU trains in fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise PhotosslError(f"precision '{precision}' needs a CUDA device; use precision auto or fp32 on the CPU")
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def precision_name(dtype: torch.dtype | None) -> str:
    """What a run record says of its precision: 'fp32', 'bfloat16' or 'float16'."""
    return str(dtype).replace("torch.", "") if dtype else "fp32"


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` CPU threads for torch (None: as set), restoring the previous number after."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ------------------------------------------------------------------------------------------------- processes
@dataclass(frozen=True)
class Runtime:
    """Where this process runs: rank and world size (1 without torchrun), device, autocast dtype."""

    rank: int
    world_size: int
    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextmanager
def process_runtime(device: str, precision: str) -> Iterator[Runtime]:
    """Join the process group that ``torchrun`` describes (WORLD_SIZE > 1), or run alone; a group joined here is
    left on exit."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = select_device(device, local_rank)
    owns = False
    if world > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        owns = True
    try:
        rank = dist.get_rank() if dist.is_initialized() else 0
        world = dist.get_world_size() if dist.is_initialized() else 1
        yield Runtime(rank, world, chosen, autocast_dtype(precision, chosen))
    finally:
        if owns and dist.is_initialized():
            dist.destroy_process_group()


# ------------------------------------------------------------------------------------------------- random streams
def seed_globals(seed: int) -> None:
    """Seed torch's, numpy's and Python's global generators (what initialisation and any unseeded draw use)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextmanager
def seeded(*words: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded by ``derive_seed(*words)``, leaving the caller's state as it
    was (a seeded initialisation that does not depend on what was drawn before)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(*words))
        yield


def torch_generator(*words: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by ``derive_seed(*words)``."""
    return torch.Generator().manual_seed(derive_seed(*words))


def wide_torch_generator(*words: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by the two 32-bit words of ``SeedSequence(words)``, high word first:
    pretraining's augmentation stream, whose seeds earlier runs recorded."""
    state = np.random.SeedSequence(list(words)).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
