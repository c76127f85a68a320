"""Known-group CARE: the embedding carries a prescribed representation ρ of the predicted group,
``L_equi = E ‖ẑ(g·x) − ρ(g) ẑ(x)‖²`` with ρ fixed (:mod:`photossl.symmetry.representations`).

- Views, photonic cells: one random element g_b of the policy's 'predict' group per cell, applied to view1.
- Views, images: the four rotations of E-SSL's rotated crops (drawn once when both are in the method); every block is
  compared with block 0, the upright crop.
- Heads: the representation matrices ρ(g) (G, D, D) at the projector's output size D, a buffer rebuilt from the
  config (not saved).
- Loss: ``lambda_care · L_equi`` (:func:`~photossl.losses.known_group_care_loss`).
- Columns: gcare.
"""

from __future__ import annotations

from photossl.losses import known_group_care_loss
from photossl.symmetry.representations import block_representation
from photossl.training.methods.group import predicted_group
from photossl.training.methods.part import Part, full_precision


class KnownGroupCARE(Part):
    name = "gcare"
    columns = ("gcare",)

    # ------------------------------------------------------------------------------------------------- the views
    def check_views(self, pipeline):
        pipeline.require_group()

    def photonics_views(self, pipeline, x, views, generator):
        labels = pipeline.policy.sample_predict(x.shape[0], generator, device=x.device)
        views.equivariant_views = pipeline.policy.predict_group.apply_labels(views.view1, labels)
        views.equivariant_labels = labels

    def vision_views(self, pipeline, images, views, generator):
        pipeline.rotation_views(images, views, generator)

    # ------------------------------------------------------------------------------------------------- the model
    def heads(self, config, feature_dim, dims):
        return {"representation": block_representation(predicted_group(config), dims[-1]).matrices.float()}

    def check_model(self, model):
        if model.representation is None:
            raise ValueError("known-group CARE needs the representation matrices (G, D, D)")

    def forward(self, model, views, out):
        if views.equivariant_views is not None:
            out.outputs[self.name] = (model.embed(views.equivariant_views), out.z1, views.equivariant_labels)
            return
        z_all = full_precision(model.projector(out.predicted_features(model, views)))
        b = views.view1.shape[0]
        out.outputs[self.name] = (z_all, z_all[:b].repeat(z_all.shape[0] // b, 1), views.predict_labels)

    def loss(self, model, views, out):
        z_g, z_0, labels = out.outputs[self.name]
        gcare = known_group_care_loss(z_g, z_0, model.representation[labels.to(z_g.device)])
        return {"gcare": gcare}, model.objective.lambda_care * gcare
