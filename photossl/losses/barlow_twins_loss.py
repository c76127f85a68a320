"""Barlow Twins: push the cross-correlation of two views towards the identity."""

from __future__ import annotations

import torch
from torch import nn

from photossl.losses._checks import check_non_negative, check_pair


def _standardise(z: torch.Tensor, eps: float) -> torch.Tensor:
    # Same as BatchNorm1d(affine=False) in training mode: biased variance, eps inside the square root.
    centred = z - z.mean(dim=0)
    return centred / torch.sqrt(centred.pow(2).mean(dim=0) + eps)


def barlow_twins_loss(
    z1: torch.Tensor, z2: torch.Tensor, lambda_offdiag: float = 5e-3, eps: float = 1e-5
) -> torch.Tensor:
    """Barlow Twins of Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction" (2021).

    With each feature standardised over the batch, ``C = z1_std^T z2_std / B`` is the (D, D) cross-correlation
    matrix and ``loss = sum_i (1 - C_ii)^2 + lambda_offdiag * sum_{i != j} C_ij^2``. Symmetric in ``(z1, z2)``.
    ``eps`` regularises the standard deviation as BatchNorm does in the authors' code; with ``eps = 0``, C is the
    exact Pearson correlation of the paper.

    Shape:
        z1, z2: (B, D) with B >= 2.
        returns: scalar.
    """
    _check_hyper_parameters(lambda_offdiag, eps)
    check_pair(z1, z2, min_rows=2)
    c = _standardise(z1, eps).T @ _standardise(z2, eps) / z1.shape[0]
    diagonal = torch.diagonal(c)
    on_diagonal = (1.0 - diagonal).pow(2).sum()
    off_diagonal = (c - torch.diag_embed(diagonal)).pow(2).sum()
    return on_diagonal + lambda_offdiag * off_diagonal


def _check_hyper_parameters(lambda_offdiag: float, eps: float) -> None:
    check_non_negative("lambda_offdiag", lambda_offdiag)
    check_non_negative("eps", eps)


class BarlowTwinsLoss(nn.Module):
    """Module form of :func:`barlow_twins_loss` (Zbontar et al. 2021).

    Shape:
        z1, z2: (B, D) with B >= 2.
        returns: scalar.
    """

    def __init__(self, lambda_offdiag: float = 5e-3, eps: float = 1e-5) -> None:
        super().__init__()
        _check_hyper_parameters(lambda_offdiag, eps)
        self.lambda_offdiag, self.eps = lambda_offdiag, eps

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(z1, z2, self.lambda_offdiag, self.eps)

    def extra_repr(self) -> str:
        return f"lambda_offdiag={self.lambda_offdiag}, eps={self.eps}"
