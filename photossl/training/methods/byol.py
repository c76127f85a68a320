"""BYOL (Grill et al. 2020): the online network predicts the target network's projection of the other view.

- Views: the pipeline's two contrastive views.
- Heads: the projector (on the ResNet-18 BYOL's own, 4096 -> 256), the target encoder and projector
  (:mod:`~photossl.training.methods.target`), and the predictor MLP ``projector output -> projector's first hidden
  width -> projector output`` (BYOL: 256 -> 4096 -> 256).
- Loss: ``base = byol_loss(p1, p2, k1, k2)``, p the predictor's outputs on the online projections, k the target's
  projections; the loss is per sample, so nothing is gathered under data parallelism.
- After each step the target follows the online network with momentum ``τ_k = 1 − (1 − τ_base)(cos(π k / K) + 1)
  / 2`` after step k of K (:func:`~photossl.training.momentum.cosine_momentum`; ``ema_momentum`` τ_base 0.996).
- Columns: base, momentum.
"""

from __future__ import annotations

from photossl.losses import byol_loss
from photossl.models import ProjectionHead
from photossl.training.methods.part import full_precision
from photossl.training.methods.target import TargetNetworkBase
from photossl.training.momentum import cosine_momentum


class BYOL(TargetNetworkBase):
    name = "byol"
    resnet18_projector = (4096, 256)

    def heads(self, config, feature_dim, dims):
        return {"byol_predictor": ProjectionHead((dims[-1], dims[0], dims[-1]))}

    def check_model(self, model):
        if model.byol_predictor is None:
            raise ValueError("BYOL needs its predictor MLP (byol_predictor)")

    def momentum(self, objective, step, total_steps):
        tau = self.base_momentum(objective)
        return tau if total_steps is None else cosine_momentum(step, total_steps, tau)

    def online(self, model, z1, z2):
        return full_precision(model.byol_predictor(z1)), full_precision(model.byol_predictor(z2))

    def loss(self, model, views, out):
        base = byol_loss(*out.outputs[self.name])
        return {"base": base}, base
