"""SimCLR (Chen et al. 2020): NT-Xent between the projections of two augmented views of every sample, the other
samples of the batch being the negatives.

- Views: the pipeline's two contrastive views, nothing more.
- Heads: the projector (:func:`~photossl.training.methods.model.build_projector`).
- Loss: ``base = NT-Xent(z1, z2; temperature)``; under data parallelism the negatives come from every rank.
- Columns: base. Config: ``temperature`` (0.1 photonics, 0.5 vision; :mod:`photossl.training.config`).
"""

from __future__ import annotations

from photossl.losses import nt_xent_loss
from photossl.training.methods.part import Part


class SimCLR(Part):
    name = "simclr"

    def loss(self, model, views, out):
        objective = model.objective
        base = nt_xent_loss(out.z1, out.z2, objective.temperature, objective.gather_distributed)
        return {"base": base}, base
