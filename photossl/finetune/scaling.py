"""Target standardisation of a fine-tuned network: fitted on the training targets, inverted on its predictions."""

from __future__ import annotations

import math

import torch


class TargetScaler:
    """y -> (y − mean) / scale with a per-output mean and one overall scale, fitted on the training targets."""

    def __init__(self, mean: torch.Tensor, scale: float):
        self.mean, self.scale = mean, float(scale)

    @classmethod
    def fit(cls, targets: torch.Tensor) -> TargetScaler:
        flat = targets.reshape(targets.shape[0], -1).double()
        mean = flat.mean(0)
        scale = float((flat - mean).pow(2).mean().sqrt()) if flat.shape[0] > 1 else 1.0
        return cls(mean.float(), scale if scale > 0 and math.isfinite(scale) else 1.0)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B, *shape) -> (B, size)."""
        return (y.reshape(y.shape[0], -1) - self.mean.to(y)) / self.scale

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """(B, size) -> (B, size) in target units."""
        return z * self.scale + self.mean.to(z)

    def symmetrized(self, permutation: torch.Tensor | None) -> TargetScaler:
        """The scaler with its mean averaged over the orbit of ``permutation`` (8, size), so that un-standardising
        keeps an exactly equivariant output equivariant (:func:`~photossl.finetune.network.output_permutation`); itself
        when None."""
        if permutation is None:
            return self
        return TargetScaler(self.mean[permutation.to(self.mean.device)].mean(0), self.scale)
