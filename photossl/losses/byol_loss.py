"""BYOL's normalised mean-squared error between online predictions and target projections."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from photossl.losses._checks import check_pair


def byol_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """BYOL of Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning" (NeurIPS 2020).

    ``p1, p2``: the online network's predictions ``q(g(f(v)))`` of views 1 and 2; ``z1, z2``: the target network's
    projections of the same views. Each prediction is regressed onto the other view's target after L2
    normalisation, ``||p̄ - z̄||^2 = 2 - 2 cos(p, z)``, and the two directions are summed (the paper's
    ``L + L~``)::

        loss = mean_b [2 - 2 cos(p1_b, z2_b)] + mean_b [2 - 2 cos(p2_b, z1_b)]

    The loss lies in [0, 8]: 0 when every prediction points along the other view's target, 4 when they are
    orthogonal. The targets are detached here (BYOL's stop-gradient): only the predictions receive a gradient.
    The loss is a mean of per-sample terms, so under data parallelism each rank's value on its own rows, averaged
    over ranks, is the loss of the whole batch; no gathering is needed.

    Shape:
        p1, p2, z1, z2: (B, D), any scale (rows are L2-normalised here).
        returns: scalar.
    """
    check_pair(p1, p2, ("p1", "p2"))
    check_pair(z1, z2, ("z1", "z2"))
    check_pair(p1, z1, ("p1", "z1"))
    return _direction(p1, z2) + _direction(p2, z1)


def _direction(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    cosine = (F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(dim=1)
    return (2.0 - 2.0 * cosine).mean()


class BYOLLoss(nn.Module):
    """Module form of :func:`byol_loss` (BYOL, Grill et al. 2020).

    Shape:
        p1, p2, z1, z2: (B, D).
        returns: scalar.
    """

    def forward(self, p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return byol_loss(p1, p2, z1, z2)
