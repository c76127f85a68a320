"""The CARE objective: NT-Xent (InfoNCE) plus a weighted equivariance loss on the same embeddings."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from photossl.losses._checks import check_choice, check_non_negative, check_positive
from photossl.losses.care_loss import (
    PAIRINGS,
    Form,
    check_chunk_size,
    paired_care_equivariance_loss,
    store_form,
)
from photossl.losses.ntxent_loss import nt_xent_loss


class CAREOutput(NamedTuple):
    """``loss = contrastive + lambda_equi * equivariance``; all scalars, terms unweighted."""

    loss: torch.Tensor
    contrastive: torch.Tensor
    equivariance: torch.Tensor


def care_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    chunk_size: int,
    *,
    lambda_equi: float,
    temperature: float = 0.5,
    pairing: str = "views",
    z_clean: torch.Tensor | None = None,
    form: Form = None,
    normalize: bool | None = None,
    gather_distributed: bool = False,
) -> CAREOutput:
    """CARE of Gupta et al. (arXiv:2306.13924): ``nt_xent_loss(z1, z2) + lambda_equi * L_equi``.

    ``L_equi`` is :func:`paired_care_equivariance_loss` on the same embeddings, so the two views must be drawn
    with one augmentation per chunk of ``chunk_size`` rows (``pairing="views"``: chunk c of ``z1`` shares ``a_1``,
    of ``z2`` shares ``a_2``; ``pairing="clean"``: ``z_clean = f(x)`` is also needed). The authors' code instead
    takes InfoNCE on per-sample views and the equivariance term on extra chunk-shared views; to do that, call
    :func:`nt_xent_loss` and :func:`paired_care_equivariance_loss` on the respective embeddings and add them.
    ``lambda_equi`` refers to this package's normalisation (``2 (n - 1)`` times the authors' weight; see
    :mod:`photossl.losses.care_loss`). With ``gather_distributed`` only the contrastive term uses other ranks'
    negatives; the equivariance term is a mean over this rank's chunks.

    Shape:
        z1, z2, z_clean: (B, D), B divisible by ``chunk_size``.
        returns: :class:`CAREOutput` of scalars.
    """
    check_non_negative("lambda_equi", lambda_equi)
    contrastive = nt_xent_loss(z1, z2, temperature, gather_distributed)
    equivariance = paired_care_equivariance_loss(z1, z2, chunk_size, pairing, z_clean, form, normalize)
    return CAREOutput(contrastive + lambda_equi * equivariance, contrastive, equivariance)


class CARELoss(nn.Module):
    """Module form of :func:`care_loss` (CARE, Gupta et al. 2023).

    Shape:
        z1, z2, z_clean: (B, D), B divisible by ``chunk_size``.
        returns: :class:`CAREOutput`; use ``.loss`` to train.
    """

    def __init__(
        self,
        chunk_size: int,
        lambda_equi: float,
        temperature: float = 0.5,
        pairing: str = "views",
        form: Form = "euclidean",
        normalize: bool | None = None,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        check_chunk_size(chunk_size)
        check_non_negative("lambda_equi", lambda_equi)
        check_positive("temperature", temperature)
        check_choice("pairing", pairing, PAIRINGS)
        self.chunk_size, self.lambda_equi, self.temperature = chunk_size, lambda_equi, temperature
        self.pairing, self.normalize, self.gather_distributed = pairing, normalize, gather_distributed
        store_form(self, form)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor, z_clean: torch.Tensor | None = None) -> CAREOutput:
        return care_loss(
            z1,
            z2,
            self.chunk_size,
            lambda_equi=self.lambda_equi,
            temperature=self.temperature,
            pairing=self.pairing,
            z_clean=z_clean,
            form=self.form,
            normalize=self.normalize,
            gather_distributed=self.gather_distributed,
        )

    def extra_repr(self) -> str:
        form = "tensor" if isinstance(self.form, torch.Tensor) else repr(self.form)
        return (
            f"chunk_size={self.chunk_size}, lambda_equi={self.lambda_equi}, temperature={self.temperature}, "
            f"pairing={self.pairing!r}, form={form}, normalize={self.normalize}"
        )
