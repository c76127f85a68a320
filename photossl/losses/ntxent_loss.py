"""NT-Xent (normalised temperature-scaled cross-entropy), the InfoNCE loss of SimCLR."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from photossl import distributed
from photossl.losses._checks import check_pair, check_positive


def nt_xent_loss(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5, gather_distributed: bool = False
) -> torch.Tensor:
    """NT-Xent of Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations" (2020).

    Rows ``z1[i]`` and ``z2[i]`` are two views of sample ``i``. Each of the 2B views is an anchor whose positive is
    the other view of its sample and whose negatives are the remaining 2B - 2 views:
    ``l_i = -log( exp(s(i, pos)/t) / sum_{k != i} exp(s(i, k)/t) )`` with cosine similarity ``s``; the loss is the
    mean of ``l_i`` over all 2B anchors, so it is symmetric in ``(z1, z2)``.

    With ``gather_distributed=True`` and a process group of W ranks, the negatives come from all W * 2B views of
    all ranks while anchors and positives stay local; the result is the mean over this rank's 2B anchors. The
    mean of this value over ranks equals the loss of one process on the concatenated W * B batch, and its gradient
    reaches other ranks' embeddings through :func:`photossl.distributed.gather_with_grad`, so averaging parameter
    gradients over ranks (as DistributedDataParallel does) reproduces the single-process gradient. Every rank must
    hold the same B.

    Shape:
        z1, z2: (B, D), any scale (rows are L2-normalised here).
        returns: scalar.
    """
    check_positive("temperature", temperature)
    check_pair(z1, z2)
    z1 = F.normalize(z1, dim=1)
    z2 = F.normalize(z2, dim=1)
    b = z1.shape[0]
    if gather_distributed and distributed.world_size() > 1:
        all1, all2 = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
        offset = distributed.rank() * b
    else:
        all1, all2, offset = z1, z2, 0
    n = all1.shape[0]

    anchors = torch.cat([z1, z2], dim=0)  # (2B, D)
    candidates = torch.cat([all1, all2], dim=0)  # (2N, D); view 1 of global sample k at k, view 2 at N + k
    logits = anchors @ candidates.T / temperature

    local = torch.arange(b, device=z1.device) + offset
    self_index = torch.cat([local, local + n])
    positive_index = torch.cat([local + n, local])
    is_self = torch.zeros_like(logits, dtype=torch.bool)
    is_self[torch.arange(2 * b, device=z1.device), self_index] = True
    logits = logits.masked_fill(is_self, float("-inf"))
    return F.cross_entropy(logits, positive_index)


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent_loss` (SimCLR, Chen et al. 2020).

    Shape:
        z1, z2: (B, D).
        returns: scalar.
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature = float(temperature)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(z1, z2, self.temperature, self.gather_distributed)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather_distributed={self.gather_distributed}"
