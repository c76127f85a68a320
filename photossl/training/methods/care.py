"""CARE (Gupta et al. 2023): within a chunk of ``care_chunk`` consecutive samples every sample gets the same pair of
transformations, so the map between the two views' embeddings must be one orthogonal map per chunk.

- Views: ``care_views`` 'shared' makes the two contrastive views themselves chunk-shared (one pair of forward passes
  serves both terms); 'separate' keeps them per sample and draws two extra chunk-shared views (the CARE authors'
  code). ``care_pairing`` 'clean' compares a view with the un-augmented input instead of with the other view.
- Heads: none; the term acts on the projector output, L2-normalised for the Euclidean form. The Minkowski form needs
  points of the hyperboloid ``<u, u>_J = -1``: the projections are taken as spatial parts and lifted,
  ``u = (sqrt(1 + |z|²), z)``.
- Loss: ``lambda_care · L_equi`` (:func:`~photossl.losses.paired_care_equivariance_loss`); ``lambda_care`` is in
  :mod:`photossl.losses.care_loss`'s normalisation, ``2 (n − 1)`` times the CARE authors' weight.
- Columns: care. Batch: the per-process batch must be a whole number of chunks. Config: ``care_views`` (shared
  photonics, separate vision) and ``care_chunk`` >= 2 (:mod:`photossl.training.config`).
"""

from __future__ import annotations

import torch

from photossl.errors import PhotosslError
from photossl.losses import paired_care_equivariance_loss
from photossl.training.methods.part import Part


def hyperboloid_lift(z: torch.Tensor) -> torch.Tensor:
    """Points of the hyperboloid ``-t^2 + |z|^2 = -1`` with spatial part z. Shape: (B, D) -> (B, D + 1)."""
    return torch.cat([torch.sqrt(1.0 + z.pow(2).sum(dim=1, keepdim=True)), z], dim=1)


class CARE(Part):
    name = "care"
    columns = ("care",)

    def check_batch(self, config, per_rank):
        if per_rank % config.care_chunk:
            raise PhotosslError(f"the per-process batch {per_rank} is not divisible by care_chunk {config.care_chunk}")

    # ------------------------------------------------------------------------------------------------- the views
    def pair_chunk(self, pipeline):
        return pipeline.care_chunk if pipeline.care_views == "shared" else None

    def photonics_views(self, pipeline, x, views, generator):
        if pipeline.care_views != "shared":
            views.care1 = pipeline.policy.augment(x, generator, pipeline.care_chunk)
            views.care2 = pipeline.policy.augment(x, generator, pipeline.care_chunk)
        if pipeline.care_pairing == "clean":
            views.clean = x

    def vision_views(self, pipeline, images, views, generator):
        if pipeline.care_views != "shared":
            views.care1, views.care2 = pipeline.shared_pair(images, pipeline.care_chunk, generator)
        if pipeline.care_pairing == "clean":
            views.clean = pipeline.normalise(images)

    # ------------------------------------------------------------------------------------------------- the model
    def forward(self, model, views, out):
        if views.care1 is None:
            pair = (out.z1, out.z2)
        else:
            pair = (model.embed(views.care1), model.embed(views.care2))
        clean = None if views.clean is None else model.embed(views.clean)
        out.outputs[self.name] = (*pair, clean)

    def loss(self, model, views, out):
        objective = model.objective
        c1, c2, clean = out.outputs[self.name]
        if objective.care_form == "minkowski":
            c1, c2 = hyperboloid_lift(c1), hyperboloid_lift(c2)
            clean = None if clean is None else hyperboloid_lift(clean)
        care = paired_care_equivariance_loss(c1, c2, objective.care_chunk, objective.care_pairing, clean,
                                             objective.care_form)
        return {"care": care}, objective.lambda_care * care
