"""What one piece of a pretraining method declares: a base loss (SimCLR, VICReg, Barlow Twins, BYOL, MoCo v2) or a
modifier (E-SSL's prediction head, CARE's term, known-group CARE's term), each in one module of this package.

A piece says which views it draws (on photonic cells and on images), which heads it adds to the encoder and projector,
which networks it runs on a batch, which loss terms it computes and logs, which per-process batch sizes it accepts,
what it warns about, and what it does after an optimiser step. Every hook does nothing by default.
:mod:`~photossl.training.methods.combine` joins a base with its modifiers; the view pipelines, the model and the
trainer only run the hooks.

Hooks receive the :class:`~photossl.training.views.PhotonicsViews` / :class:`~photossl.training.views.VisionViews`
pipeline (its settings and draws), the :class:`~photossl.training.methods.model.PretrainModel` (its modules and
:class:`~photossl.training.methods.model.Objective`), the batch's :class:`~photossl.training.views.Views` and the
:class:`Pass` of the networks' outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in at least float32: under autocast, heads emit float16/bfloat16, and the losses' exponentials and squares
    want float32."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


@dataclass
class Pass:
    """The networks' outputs on one batch that the parts share: encoder features ``h1`` of view1, the projections
    ``z1``, ``z2`` of both views (float32), the encoder features of ``predict_views`` once a part asked for them, and
    each part's own outputs under its name (``outputs``)."""

    h1: torch.Tensor
    z1: torch.Tensor
    z2: torch.Tensor
    predicted: torch.Tensor | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    def predicted_features(self, model, views) -> torch.Tensor:
        """Encoder features of ``views.predict_views``, computed once for E-SSL's head and known-group CARE."""
        if self.predicted is None:
            self.predicted = model.encoder(views.predict_views)
        return self.predicted


class Part:
    """A piece of a method; subclasses override the hooks they need."""

    name = ""
    # Loss terms it logs, one column each, after the base's 'loss' and 'base'.
    columns: tuple[str, ...] = ()
    # BYOL and MoCo train against momentum copies of the encoder and projector.
    target_network = False
    # A base's own projector sizes (hidden, output) on the ResNet-18, in place of SimCLR's.
    resnet18_projector: tuple[int, ...] | None = None

    # --------------------------------------------------------------------------------------------------- the run
    def warnings(self, config) -> list[str]:
        """One-line warnings about a resolved config (printed before training)."""
        return []

    def check_batch(self, config, per_rank: int) -> None:
        """Raise PhotosslError when the per-process batch ``per_rank`` does not suit the part."""

    # ------------------------------------------------------------------------------------------------- the views
    def check_views(self, pipeline) -> None:
        """Raise PhotosslError when ``pipeline`` cannot draw the part's views."""

    def pair_chunk(self, pipeline) -> int | None:
        """Samples per shared draw of the two contrastive views, when the part wants them chunk-shared."""
        return None

    def photonics_views(self, pipeline, x: torch.Tensor, views, generator: torch.Generator | None) -> None:
        """Add the part's views of cells x (B, 1, N, N) to ``views``."""

    def vision_views(self, pipeline, images: torch.Tensor, views, generator: torch.Generator | None) -> None:
        """Add the part's views of images (B, C, H, W) in [0, 1] to ``views``."""

    # ------------------------------------------------------------------------------------------------- the model
    def heads(self, config, feature_dim: int, dims: tuple[int, ...]) -> dict[str, Any]:
        """The modules (or buffers) the part adds, as keyword arguments of
        :class:`~photossl.training.methods.model.PretrainModel`; ``dims`` are the projector's hidden and output
        sizes."""
        return {}

    def check_model(self, model) -> None:
        """Raise ValueError when ``model`` lacks a head the part needs."""

    def forward(self, model, views, out: Pass) -> None:
        """Run the part's networks on the batch (under autocast), keeping what its loss needs in ``out``."""

    def loss(self, model, views, out: Pass) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """(logged terms, what the part adds to the loss), in full precision."""
        raise NotImplementedError

    def after_loss(self, model, out: Pass) -> None:
        """Runs once the loss is computed (MoCo enqueues the batch's keys)."""

    def after_step(self, model, step: int, total_steps: int | None) -> dict[str, float]:
        """Runs after optimiser step ``step`` (0-based) of ``total_steps``; returns values to log."""
        return {}
