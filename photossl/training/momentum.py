"""Momentum (exponential-moving-average) target networks and MoCo's queue of negative keys.

BYOL (Grill et al. 2020) and MoCo (He et al. 2020) keep a copy of the encoder and projector whose weights follow the
online ones, ``ξ ← τ ξ + (1 − τ) θ``, after every optimiser step. MoCo keeps τ constant (0.999); BYOL raises
it from ``τ_base`` (0.996) to 1 over the run's K steps, ``τ_k = 1 − (1 − τ_base)(cos(π k / K) + 1) / 2`` after
step k (0-based), so the schedule's position is the global step, which every checkpoint holds.

Only parameters are averaged: a target network runs in training mode like the online one, so its BatchNorm layers
keep their own running statistics (as in both papers' code).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from photossl.errors import PhotosslError


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """BYOL's momentum after step ``step`` (0-based) of ``total_steps``: ``base`` at step 0, 1 at ``total_steps``.

    ``τ = 1 − (1 − base)(cos(π step / total_steps) + 1) / 2``; steps past the end keep 1.
    """
    if total_steps < 1 or step < 0:
        raise PhotosslError(f"need total_steps >= 1 and step >= 0, got {total_steps}, {step}")
    t = min(step, total_steps) / total_steps
    return 1.0 - (1.0 - base) * (math.cos(math.pi * t) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target ← momentum · target + (1 − momentum) · online``, parameter by parameter (in place).

    The two modules must have the same architecture (the target is a copy of the online module).
    """
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)


class KeyQueue(nn.Module):
    """MoCo's dictionary: a first-in first-out queue of ``size`` L2-normalised keys, kept as buffers so that the
    model's state dict (hence every checkpoint) holds it.

    ``keys`` (size, dim): row ``pointer`` is the next to be overwritten, so reading from ``pointer`` on, wrapping
    around, goes from the oldest key to the newest (:meth:`ordered`). It starts as random unit vectors, as in
    MoCo's code, and every :meth:`push` replaces the oldest rows.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise PhotosslError(f"queue size must be an integer >= 1, got {size!r}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Enqueue ``keys`` (N, dim) in order, dropping the N oldest; with N > size only the last ``size`` remain."""
        n, size = keys.shape[0], self.size
        kept = keys[-size:] if n > size else keys
        start = self.pointer + (n - kept.shape[0])  # as if the dropped leading keys had been written, then overwritten
        index = (start + torch.arange(kept.shape[0], device=self.keys.device)) % size
        self.keys[index] = kept.detach().to(self.keys.dtype)
        self.pointer.copy_((self.pointer + n) % size)

    def ordered(self) -> torch.Tensor:
        """The keys from the oldest to the newest. Shape: (size, dim)."""
        return torch.roll(self.keys, -int(self.pointer), dims=0)

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.keys.shape[1]}"
