"""Fine-tuning augmentations: random invariance transformations of a batch of cells and the matching action on
their targets (k-points permute for bands)."""

from __future__ import annotations

import torch

from photossl.data.loaders import EPS_NORMALISATION
from photossl.finetune.targets import SYMMETRY_NAME, TargetInfo
from photossl.symmetry import SymmetryPolicy, transform_target_batch


class Augmenter:
    """Random invariance transformations of a batch of cells, with the matching action on the targets."""

    def __init__(self, names: list[str], target: TargetInfo):
        self.policy = SymmetryPolicy(invariant=list(names), eps_normalisation=EPS_NORMALISATION) if names else None
        self.target = target
        self.kpoints = None if target.kpoints is None else torch.as_tensor(target.kpoints)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """x (B, C, N, N), y (B, *shape) raw targets -> both transformed by one random element per cell."""
        if self.policy is None:
            return x, y
        elements = self.policy.sample_invariant(x.shape[0], x.shape[-1], generator, device=x.device)
        x = elements.apply(x, self.policy.eps_normalisation)
        y = transform_target_batch(elements, SYMMETRY_NAME[self.target.name], y, self.kpoints)
        return x, y
