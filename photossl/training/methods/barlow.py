"""Barlow Twins (Zbontar et al. 2021): the cross-correlation of the two views' projections driven to the identity.

- Views: the pipeline's two contrastive views.
- Heads: the projector.
- Loss: ``base = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²`` (λ = ``barlow_lambda``); under data parallelism the
  cross-correlation is over every rank's embeddings.
- Columns: base.
"""

from __future__ import annotations

from photossl import distributed
from photossl.losses import barlow_twins_loss
from photossl.training.methods.part import Part


class BarlowTwins(Part):
    name = "barlow"

    def loss(self, model, views, out):
        z1, z2 = out.z1, out.z2
        if model.objective.gather_distributed:
            z1, z2 = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
        base = barlow_twins_loss(z1, z2, model.objective.barlow_lambda)
        return {"base": base}, base
