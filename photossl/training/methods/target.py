"""What BYOL and MoCo v2 share: a target encoder and projector, copies of the online ones made by
:class:`~photossl.training.methods.model.PretrainModel` (same initial weights, no gradient), moved towards them after
every optimiser step (:func:`~photossl.training.momentum.ema_update`).

On a batch the target network embeds both views (the keys ``k1``, ``k2``) and the online side gives ``q1``, ``q2``
(the projections, or BYOL's predictions of them); the base's loss compares each view's online side with the other
view's key. E-SSL's head and CARE's terms act on the online network.
"""

from __future__ import annotations

import torch

from photossl.training.config import DEFAULT_EMA_MOMENTUM
from photossl.training.methods.part import Part
from photossl.training.momentum import ema_update


class TargetNetworkBase(Part):
    """A base loss trained against momentum copies of the encoder and projector."""

    columns = ("momentum",)  # the EMA momentum, averaged over the epoch's steps
    target_network = True

    def base_momentum(self, objective) -> float:
        """BYOL's τ_base or MoCo's constant momentum: ``ema_momentum``, else the base's default."""
        return objective.ema_momentum if objective.ema_momentum is not None else DEFAULT_EMA_MOMENTUM[self.name]

    def momentum(self, objective, step: int, total_steps: int | None) -> float:
        """The momentum of the update after step ``step``; constant unless a base says otherwise."""
        return self.base_momentum(objective)

    def online(self, model, z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The online side compared with the keys; the projections themselves unless a base says otherwise."""
        return z1, z2

    def forward(self, model, views, out):
        k1, k2 = model.target_embed(views.view1), model.target_embed(views.view2)
        q1, q2 = self.online(model, out.z1, out.z2)
        out.outputs[self.name] = (q1, q2, k1, k2)

    @torch.no_grad()
    def after_step(self, model, step, total_steps):
        tau = self.momentum(model.objective, step, total_steps)
        ema_update(model.target_encoder, model.encoder, tau)
        ema_update(model.target_projector, model.projector, tau)
        return {"momentum": tau}
