"""MoCo v2 (He et al. 2020, Chen et al. 2020): InfoNCE of each view's query against the other view's key, with a
queue of earlier keys as negatives.

- Views: the pipeline's two contrastive views.
- Heads: the projector (on the ResNet-18 MoCo's own, 2048 -> 128), the target encoder and projector
  (:mod:`~photossl.training.methods.target`), and the queue of ``moco_queue_size`` keys
  (:class:`~photossl.training.momentum.KeyQueue`).
- Loss: ``base = (moco_loss(q1, k2, queue) + moco_loss(q2, k1, queue)) / 2`` with q the online projections, k the
  target's. Once the loss is computed (so a batch's keys are never its own negatives) the keys of view 1, then of
  view 2, are enqueued, in training mode only; under data parallelism every rank enqueues the keys of the whole batch
  in rank order, so every rank holds the same queue.
- After each step the target follows the online network with the constant momentum ``ema_momentum`` (0.999).
- Columns: base, momentum. Config: temperature 0.2 (:mod:`photossl.training.config`).
"""

from __future__ import annotations

import torch
from torch import nn

from photossl import distributed
from photossl.losses import moco_loss
from photossl.training.methods.target import TargetNetworkBase
from photossl.training.momentum import KeyQueue


class MoCo(TargetNetworkBase):
    name = "moco"
    resnet18_projector = (2048, 128)  # SimCLR's 2048-d output would make the queue 16 times larger

    def heads(self, config, feature_dim, dims):
        return {"queue": KeyQueue(config.moco_queue_size, dims[-1])}

    def check_model(self, model):
        if model.queue is None:
            raise ValueError("MoCo needs a queue of negative keys (queue)")

    def loss(self, model, views, out):
        q1, q2, k1, k2 = out.outputs[self.name]
        queue, temperature = model.queue.keys, model.objective.temperature
        base = 0.5 * (moco_loss(q1, k2, queue, temperature) + moco_loss(q2, k1, queue, temperature))
        return {"base": base}, base

    @torch.no_grad()
    def after_loss(self, model, out):
        if not model.training:
            return
        k1, k2 = out.outputs[self.name][2:]
        if model.objective.gather_distributed:
            k1, k2 = distributed.gather_with_grad(k1), distributed.gather_with_grad(k2)
        model.queue.push(nn.functional.normalize(torch.cat([k1, k2]), dim=1))
