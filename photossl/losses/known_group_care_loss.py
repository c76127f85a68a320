"""Known-group CARE: the embedding carries a prescribed orthogonal representation ρ of a group acting exactly on
the inputs, ``L = E ‖f(g·x) − ρ(g) f(x)‖²`` on L2-normalised embeddings.

CARE (Gupta et al. 2023) asks only that *some* orthogonal map relates f(g·x) and f(x); when the group and its action
are known exactly (D4 on a square unit cell) the map can be fixed in advance, so the equivariance is also
interpretable: the trivial block is invariant, the others transform as the chosen irreducibles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def known_group_care_loss(z_g: torch.Tensor, z: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ‖ẑ_g − ρ ẑ‖² with ẑ = z/‖z‖;
    0 exactly when f is equivariant with ρ, at most 4.

    Shape:
        z_g: (B, D) embeddings of the transformed inputs g_b·x_b; z: (B, D) embeddings of x_b;
        rho: (B, D, D) the representation matrix of each sample's g_b.
        returns: scalar.
    """
    if z_g.dim() != 2 or z.shape != z_g.shape:
        raise ValueError(f"z_g and z must both have shape (B, D), got {tuple(z_g.shape)} and {tuple(z.shape)}")
    b, d = z.shape
    if rho.shape != (b, d, d):
        raise ValueError(f"rho must have shape ({b}, {d}, {d}), got {tuple(rho.shape)}")
    target = torch.bmm(rho.to(z.dtype), F.normalize(z, dim=1).unsqueeze(2)).squeeze(2)
    return (F.normalize(z_g, dim=1) - target).pow(2).sum(dim=1).mean()


class KnownGroupCARELoss(nn.Module):
    """Module form of :func:`known_group_care_loss`. Shape: z_g, z (B, D); rho (B, D, D)."""

    def forward(self, z_g: torch.Tensor, z: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        return known_group_care_loss(z_g, z, rho)
