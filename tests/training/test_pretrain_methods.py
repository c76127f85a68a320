"""A method's loss is exactly base + λ_predict·CE + λ_care·L_equi, computed from the loss functions directly."""

import pytest
import torch
from torch import nn

from photossl.losses import (
    barlow_twins_loss,
    minkowski_form,
    nt_xent_loss,
    paired_care_equivariance_loss,
    transform_prediction_loss,
    vicreg_loss,
)
from photossl.models import PredictionHead, ProjectionHead
from photossl.training.config import MethodSpec, make_config, resolve_defaults
from photossl.training.methods import Objective, PretrainModel, build_model, hyperboloid_lift
from photossl.training.views import Views


class TinyEncoder(nn.Module):
    feature_dim = 12

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                 nn.Linear(16, self.feature_dim))

    def forward(self, x):
        return self.net(x)


def _model(spec, **objective):
    torch.manual_seed(0)
    encoder = TinyEncoder()
    projector = ProjectionHead((12, 10, 6), norm="none")
    predictor = PredictionHead(12, 4, hidden_dims=(8,), norm="none") if spec.predict else None
    return PretrainModel(encoder, projector, predictor, Objective(spec=spec, **objective)).double()


def _views(b=8, with_predict=True, care_extra=False, clean=False):
    g = torch.Generator().manual_seed(1)
    x = lambda n=b: torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64)  # noqa: E731
    views = Views(x(), x())
    if with_predict:
        views.predict_views, views.predict_labels = x(4 * b), torch.arange(4).repeat_interleave(b)
    if care_extra:
        views.care1, views.care2 = x(), x()
    if clean:
        views.clean = x()
    return views


def test_essl_care_loss_is_the_weighted_sum_of_its_terms():
    model = _model(MethodSpec("simclr", predict=True, care=True), temperature=0.2, lambda_predict=5.0,
                   lambda_care=0.7, care_chunk=4)
    views = _views()
    terms = model(views)
    embed = lambda v: model.projector(model.encoder(v))  # noqa: E731
    z1, z2 = embed(views.view1), embed(views.view2)
    base = nt_xent_loss(z1, z2, 0.2)
    care = paired_care_equivariance_loss(z1, z2, 4)
    pred = transform_prediction_loss(model.predictor(model.encoder(views.predict_views)), views.predict_labels)
    torch.testing.assert_close(terms["base"], base)
    torch.testing.assert_close(terms["care"], care)
    torch.testing.assert_close(terms["predict_ce"], pred.loss)
    torch.testing.assert_close(terms["predict_acc"], pred.accuracy)
    torch.testing.assert_close(terms["loss"], base + 5.0 * pred.loss + 0.7 * care)
    assert care > 0 and pred.loss > 0


def test_plain_simclr_has_only_the_base_term():
    model = _model(MethodSpec("simclr"), temperature=0.5)
    terms = model(_views(with_predict=False))
    assert set(terms) == {"loss", "base"}
    torch.testing.assert_close(terms["loss"], terms["base"])


def test_vicreg_and_barlow_bases():
    views = _views(with_predict=False)
    model = _model(MethodSpec("vicreg"), vicreg_weights=(2.0, 3.0, 4.0))
    z1, z2 = model.embed(views.view1), model.embed(views.view2)
    terms = model(views)
    expected = vicreg_loss(z1, z2, 2.0, 3.0, 4.0)
    torch.testing.assert_close(terms["loss"], expected.loss)
    torch.testing.assert_close(terms["covariance"], expected.covariance)
    model = _model(MethodSpec("barlow"), barlow_lambda=0.01)
    z1, z2 = model.embed(views.view1), model.embed(views.view2)
    torch.testing.assert_close(model(views)["loss"], barlow_twins_loss(z1, z2, 0.01))


def test_care_on_separate_views_and_clean_pairing():
    views = _views(with_predict=False, care_extra=True, clean=True)
    model = _model(MethodSpec("simclr", care=True), care_chunk=2, lambda_care=1.0, care_pairing="clean")
    c1, c2, clean = model.embed(views.care1), model.embed(views.care2), model.embed(views.clean)
    expected = paired_care_equivariance_loss(c1, c2, 2, "clean", clean)
    torch.testing.assert_close(model(views)["care"], expected)


def test_minkowski_care_acts_on_hyperboloid_points():
    z = torch.randn(5, 3, dtype=torch.float64)
    u = hyperboloid_lift(z)
    j = minkowski_form(4, dtype=torch.float64)
    torch.testing.assert_close(torch.einsum("bi,ij,bj->b", u, j, u), -torch.ones(5, dtype=torch.float64))
    views = _views(with_predict=False)
    model = _model(MethodSpec("simclr", care=True), care_chunk=4, care_form="minkowski")
    z1, z2 = model.embed(views.view1), model.embed(views.view2)
    expected = paired_care_equivariance_loss(hyperboloid_lift(z1), hyperboloid_lift(z2), 4, form="minkowski")
    torch.testing.assert_close(model(views)["care"], expected)


def test_prediction_gradient_reaches_the_encoder_not_the_projector():
    model = _model(MethodSpec("simclr", predict=True), lambda_predict=1.0)
    views = _views()
    pred = model.predictor(model.encoder(views.predict_views))
    transform_prediction_loss(pred, views.predict_labels).loss.backward()
    assert all(p.grad is None for p in model.projector.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())


@pytest.mark.parametrize(
    "values, classes",
    [({"method": "essl", "predict": "d4"}, 8), ({"method": "essl"}, 4), ({"method": "care"}, None)],
)
def test_build_model_heads(values, classes):
    model = build_model(resolve_defaults(make_config(values)), in_channels=1)
    if classes is None:
        assert model.predictor is None
    else:
        assert model.predictor.n_classes == classes
        assert model.predictor[0].in_features == model.encoder.feature_dim  # head on encoder features
    assert model.projector.in_dim == model.encoder.feature_dim


def test_essl_reference_heads():
    model = build_model(resolve_defaults(make_config({"method": "essl", "encoder": "essl"})), in_channels=1)
    assert model.projector.dims == (1024, 512, 512, 256)
    assert model.predictor.dims == (1024, 512, 512, 4)
    assert model.encoder.circular_padding is True
    zero = build_model(resolve_defaults(make_config({"encoder": "essl", "circular_padding": False})), 1)
    assert zero.encoder.circular_padding is False


def test_predicting_method_needs_a_head():
    with pytest.raises(ValueError, match="prediction head"):
        PretrainModel(TinyEncoder(), nn.Identity(), None, Objective(MethodSpec("simclr", predict=True)))
