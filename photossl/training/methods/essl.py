"""E-SSL (Dangovski et al. 2022): a head on the encoder features predicts which element g of a finite group
transformed its input; relative E-SSL's head reads a pair (x, g·x) and is scored up to the stabiliser of x, so the
task has an answer on cells without an orientation.

- Views, photonic cells: every element of the policy's 'predict' group applied to every *un-augmented* cell
  (``predict_views`` 'all', G·B inputs in group-major order, as the E-SSL photonics code does), or one random element
  per cell ('one', B inputs). Relative: pairs with the identity block ('all') or with view1 ('one'); a prediction is
  right on the whole coset of g under the anchor's stabiliser (a point operation that maps the cell onto a
  translate of itself is invisible to translation-invariant features; half-cell translations are compared exactly).
- Views, images: the SimCLR recipe at half size shown at the four right-angle rotations, shared with known-group
  CARE; 'one' keeps one rotation per image unless known-group CARE needs every block. Relative pairs each rotated crop
  with its upright copy, so it needs 'all' (natural images are taken to have no rotation symmetry of their own).
- Heads: the prediction head on the encoder output (not on the projector), hidden sizes per encoder or
  ``predictor_dims``, input twice the feature size when relative.
- Loss: ``lambda_predict · CE(head(encoder(g·x)), g)``, relative: the coset loss
  (:func:`~photossl.losses.coset_prediction_loss`).
- Columns: predict_ce, predict_acc. Warns when circular padding makes the encoder blind to a predicted half-cell
  translation. Config: ``lambda_predict`` (5 photonics, 0.4 vision), a vision base lr of 0.06
  (:mod:`photossl.training.config`).
"""

from __future__ import annotations

import torch

from photossl.errors import PhotosslError
from photossl.losses import coset_prediction_loss, transform_prediction_loss
from photossl.models import PredictionHead
from photossl.symmetry.relative import coset_mask, stabiliser_mask
from photossl.training.methods.group import predicted_group
from photossl.training.methods.part import Part, full_precision

# Hidden sizes of the head per encoder (RECIPES §2 and §3 for essl/resnet18).
PREDICTOR_DIMS = {"essl": (512, 512), "small": (256, 256), "digits": (128, 128), "resnet18": (2048, 2048)}


class ESSL(Part):
    name = "essl"
    columns = ("predict_ce", "predict_acc")

    def warnings(self, config):
        if (config.track == "photonics" and config.circular_padding and config.encoder in ("small", "essl")
                and config.symmetry_policy().predict == "half_translate"):
            return ["warning: with circular padding the encoder is exactly invariant to half-cell translations, so "
                    "predicting them cannot be learnt; use --zero-padding (as the E-SSL reference) or another group"]
        return []

    # ------------------------------------------------------------------------------------------------- the views
    def check_views(self, pipeline):
        pipeline.require_group()
        if pipeline.track == "vision" and pipeline.spec.relative and pipeline.predict_views == "one":
            raise PhotosslError("relative E-SSL on images pairs each rotated crop with its upright copy: use "
                                "predict_views 'all'")

    def photonics_views(self, pipeline, x, views, generator):
        policy, relative, one = pipeline.policy, pipeline.spec.relative, pipeline.predict_views == "one"
        # Relative E-SSL with one view per sample pairs g·view1 with view1, whose features are computed anyway.
        anchor = views.view1 if relative and one else x
        if one:
            labels = policy.sample_predict(x.shape[0], generator, device=x.device)
            views.predict_views, views.predict_labels = policy.predict_group.apply_labels(anchor, labels), labels
        else:
            views.predict_views, views.predict_labels = policy.predict_views(x)
        if relative:
            views.relative_anchor = "view1" if one else "first_block"
            group = policy.predict_group
            stabiliser = stabiliser_mask(group, anchor, modulo_translations=group.name != "half_translate")
            repeats = views.predict_labels.shape[0] // x.shape[0]
            views.predict_correct = coset_mask(group, views.predict_labels, stabiliser.repeat(repeats, 1))

    def vision_views(self, pipeline, images, views, generator):
        pipeline.rotation_views(images, views, generator)
        if pipeline.spec.relative:
            views.relative_anchor = "first_block"
            views.predict_correct = torch.nn.functional.one_hot(views.predict_labels, 4).bool()
        if pipeline.predict_views == "one" and not pipeline.spec.known_group:  # known-group CARE reads every block
            views.keep_one_prediction(generator)

    # ------------------------------------------------------------------------------------------------- the model
    def heads(self, config, feature_dim, dims):
        hidden = tuple(config.predictor_dims or PREDICTOR_DIMS.get(config.encoder, (feature_dim, feature_dim)))
        in_dim = 2 * feature_dim if config.spec.relative else feature_dim
        return {"predictor": PredictionHead(in_dim, predicted_group(config).order, hidden_dims=hidden,
                                            norm=config.predictor_norm)}

    def check_model(self, model):
        if model.predictor is None:
            raise ValueError("an E-SSL method needs a prediction head")

    def forward(self, model, views, out):
        features = out.predicted_features(model, views)
        if views.relative_anchor is None:
            out.outputs[self.name] = full_precision(model.predictor(features))
            return
        if views.relative_anchor == "view1":
            anchor = out.h1
        else:
            b = views.view1.shape[0]
            anchor = features[:b].repeat(features.shape[0] // b, 1)
        out.outputs[self.name] = full_precision(model.predictor(torch.cat([anchor, features], dim=1)))

    def loss(self, model, views, out):
        logits = out.outputs[self.name]
        if views.relative_anchor is None:
            result = transform_prediction_loss(logits, views.predict_labels)
        else:
            result = coset_prediction_loss(logits, views.predict_correct.to(logits.device))
        terms = {"predict_ce": result.loss, "predict_acc": result.accuracy}
        return terms, model.objective.lambda_predict * result.loss
