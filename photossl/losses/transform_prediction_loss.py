"""E-SSL's equivariance objective: classify which transformation was applied to an input."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from photossl.errors import PhotosslError


class TransformPredictionOutput(NamedTuple):
    """Mean cross-entropy (differentiable) and top-1 accuracy in [0, 1] (detached), both scalars."""

    loss: torch.Tensor
    accuracy: torch.Tensor


def transform_prediction_loss(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> TransformPredictionOutput:
    """Cross-entropy of predicting the transformation index, as in Dangovski et al., "Equivariant Contrastive
    Learning" (ICLR 2022), where E-SSL adds ``lambda * CE`` to the contrastive loss (e.g. 4 rotations, or 4
    half-cell translations of a photonic unit cell).

    Shape:
        logits: (N, K) unnormalised scores for K transformations.
        labels: (N,) integer transformation indices in [0, K).
        returns: :class:`TransformPredictionOutput` of scalars.
    """
    _check_label_smoothing(label_smoothing)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, num_transforms), got {tuple(logits.shape)}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    with torch.no_grad():
        accuracy = (logits.argmax(dim=1) == labels).to(logits.dtype).mean()
    return TransformPredictionOutput(loss, accuracy)


def _check_label_smoothing(label_smoothing: float) -> None:
    if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing < 1.0:
        raise PhotosslError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")


class TransformPredictionLoss(nn.Module):
    """Module form of :func:`transform_prediction_loss` (E-SSL, Dangovski et al. 2022).

    Shape:
        logits: (N, K); labels: (N,) integer.
        returns: :class:`TransformPredictionOutput`; use ``.loss`` to train.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        _check_label_smoothing(label_smoothing)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> TransformPredictionOutput:
        return transform_prediction_loss(logits, labels, self.label_smoothing)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"
