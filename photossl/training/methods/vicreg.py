"""VICReg (Bardes et al. 2022): invariance, variance and covariance terms of the projections of two views.

- Views: the pipeline's two contrastive views.
- Heads: the projector.
- Loss: ``base = λ_inv · invariance + λ_var · variance + λ_cov · covariance`` (``vicreg_weights``); under data
  parallelism the batch statistics are global: each rank sees the embeddings of every rank, and the gradient reaches
  its own rows.
- Columns: base, invariance, variance, covariance.
"""

from __future__ import annotations

from photossl import distributed
from photossl.losses import vicreg_loss
from photossl.training.methods.part import Part


class VICReg(Part):
    name = "vicreg"
    columns = ("invariance", "variance", "covariance")

    def loss(self, model, views, out):
        z1, z2 = out.z1, out.z2
        if model.objective.gather_distributed:
            z1, z2 = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
        terms = vicreg_loss(z1, z2, *model.objective.vicreg_weights)
        return {"base": terms.loss, "invariance": terms.invariance, "variance": terms.variance,
                "covariance": terms.covariance}, terms.loss
