"""Relative E-SSL's objective: classify the transformation between two views, any element of the right coset
counting as correct (a symmetric cell cannot tell g from g s for s in its stabiliser)."""

from __future__ import annotations

import torch
from torch import nn

from photossl.losses.transform_prediction_loss import TransformPredictionOutput


def coset_prediction_loss(logits: torch.Tensor, correct: torch.Tensor) -> TransformPredictionOutput:
    """Negative log of the probability mass on the right answers, −log Σ_{k∈S} softmax(logits)_k, averaged over N.

    With one right answer per row this is the cross-entropy of E-SSL's prediction head; with a whole coset the
    head is free to split its mass inside it. Accuracy counts a row as right when its top class is in the set.

    Shape:
        logits: (N, K) scores; correct: (N, K) bool with at least one True per row.
        returns: :class:`~photossl.losses.TransformPredictionOutput` of scalars.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (N, num_transforms), got {tuple(logits.shape)}")
    if correct.shape != logits.shape or correct.dtype != torch.bool:
        raise ValueError(f"correct must be a bool tensor of shape {tuple(logits.shape)}, got "
                         f"{correct.dtype} {tuple(correct.shape)}")
    if not bool(correct.any(dim=1).all()):
        raise ValueError("every row of correct needs at least one right answer")
    log_p = torch.log_softmax(logits, dim=1)
    masked = log_p.masked_fill(~correct, float("-inf"))
    loss = -torch.logsumexp(masked, dim=1).mean()
    with torch.no_grad():
        top = logits.argmax(dim=1, keepdim=True)
        accuracy = correct.gather(1, top).to(logits.dtype).mean()
    return TransformPredictionOutput(loss, accuracy)


class CosetPredictionLoss(nn.Module):
    """Module form of :func:`coset_prediction_loss`. Shape: logits (N, K), correct (N, K) bool."""

    def forward(self, logits: torch.Tensor, correct: torch.Tensor) -> TransformPredictionOutput:
        return coset_prediction_loss(logits, correct)
