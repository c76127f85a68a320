"""MoCo's InfoNCE: a query against its positive key and a queue of negative keys."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from photossl.losses._checks import check_pair, check_positive


def moco_loss(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE of MoCo: He et al., "Momentum Contrast for Unsupervised Visual Representation Learning" (CVPR 2020),
    with v2's settings (Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020: MLP projector,
    τ = 0.2).

    Query ``q_b`` has one positive, the key ``k_b`` of another view of its sample, and the rows ``n_j`` of ``queue``
    as negatives; with every vector L2-normalised::

        l_b = -log( exp(q_b·k_b / τ) / (exp(q_b·k_b / τ) + sum_j exp(q_b·n_j / τ)) )

    and the loss is the mean of ``l_b`` over the batch. The keys and the queue are detached (they come from the
    momentum encoder): only the queries receive a gradient. An empty queue gives 0.

    Each query is scored against the same queue, so under data parallelism the mean over ranks of each rank's
    value on its own rows is the loss of the whole batch, provided every rank holds the same queue (keys gathered
    from every rank before they are enqueued).

    Shape:
        q, k: (B, D), any scale (rows are L2-normalised here).
        queue: (K, D), K >= 0.
        returns: scalar.
    """
    check_positive("temperature", temperature)
    check_pair(q, k, ("q", "k"))
    if queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"queue must have shape (K, {q.shape[1]}), got {tuple(queue.shape)}")
    q = F.normalize(q, dim=1)
    k = F.normalize(k.detach(), dim=1)
    negatives = F.normalize(queue.detach(), dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
    logits = torch.cat([positive, q @ negatives.T], dim=1) / temperature  # (B, 1 + K); the positive is column 0
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


class MoCoLoss(nn.Module):
    """Module form of :func:`moco_loss` (MoCo, He et al. 2020; MoCo v2, Chen et al. 2020).

    Shape:
        q, k: (B, D); queue: (K, D).
        returns: scalar.
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        check_positive("temperature", temperature)
        self.temperature = float(temperature)

    def forward(self, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
        return moco_loss(q, k, queue, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
