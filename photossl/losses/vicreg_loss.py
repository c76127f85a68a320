"""VICReg: variance-invariance-covariance regularisation."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from photossl.losses._checks import check_non_negative, check_pair, check_positive


class VICRegOutput(NamedTuple):
    """Weighted total and the three unweighted terms, all scalars."""

    loss: torch.Tensor
    invariance: torch.Tensor
    variance: torch.Tensor
    covariance: torch.Tensor


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    return m - torch.diag_embed(torch.diagonal(m))


def _variance_term(z: torch.Tensor, eps: float) -> torch.Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def _covariance_term(z: torch.Tensor) -> torch.Tensor:
    b, d = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (b - 1)
    return _off_diagonal(cov).pow(2).sum() / d


def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    eps: float = 1e-4,
) -> VICRegOutput:
    """VICReg of Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance Regularization" (ICLR 2022).

    Terms, normalised as in the authors' code (facebookresearch/vicreg), for which the default weights were tuned:

    - invariance: ``mean_{b,d} (z1 - z2)^2`` (the paper's ``s`` divided by D);
    - variance: ``mean_d relu(1 - sqrt(Var_b z[:, d] + eps))`` (unbiased variance), averaged over the two views
      (the paper sums them, i.e. its weight is half of ``var_weight``);
    - covariance: ``sum_{i != j} C(z)_ij^2 / D`` with the unbiased covariance ``C``, summed over the two views.

    ``loss = sim_weight * invariance + var_weight * variance + cov_weight * covariance``.

    Shape:
        z1, z2: (B, D) with B >= 2.
        returns: :class:`VICRegOutput` of scalars.
    """
    _check_hyper_parameters(sim_weight, var_weight, cov_weight, eps)
    check_pair(z1, z2, min_rows=2)
    invariance = F.mse_loss(z1, z2)
    variance = 0.5 * (_variance_term(z1, eps) + _variance_term(z2, eps))
    covariance = _covariance_term(z1) + _covariance_term(z2)
    loss = sim_weight * invariance + var_weight * variance + cov_weight * covariance
    return VICRegOutput(loss, invariance, variance, covariance)


def _check_hyper_parameters(sim_weight: float, var_weight: float, cov_weight: float, eps: float) -> None:
    check_non_negative("sim_weight", sim_weight)
    check_non_negative("var_weight", var_weight)
    check_non_negative("cov_weight", cov_weight)
    check_positive("eps", eps)


class VICRegLoss(nn.Module):
    """Module form of :func:`vicreg_loss` (Bardes et al. 2022).

    Shape:
        z1, z2: (B, D) with B >= 2.
        returns: :class:`VICRegOutput`; use ``.loss`` to train.
    """

    def __init__(
        self, sim_weight: float = 25.0, var_weight: float = 25.0, cov_weight: float = 1.0, eps: float = 1e-4
    ) -> None:
        super().__init__()
        _check_hyper_parameters(sim_weight, var_weight, cov_weight, eps)
        self.sim_weight, self.var_weight, self.cov_weight, self.eps = sim_weight, var_weight, cov_weight, eps

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> VICRegOutput:
        return vicreg_loss(z1, z2, self.sim_weight, self.var_weight, self.cov_weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"sim_weight={self.sim_weight}, var_weight={self.var_weight}, "
            f"cov_weight={self.cov_weight}, eps={self.eps}"
        )
