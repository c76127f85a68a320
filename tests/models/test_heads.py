import pytest
import torch
from torch import nn

from photossl.models import MLP, PredictionHead, ProjectionHead, RegressionHead


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def _lin(din, dout, bias=True):
    return din * dout + (dout if bias else 0)


def _kinds(m):
    return [type(layer).__name__ for layer in m]


def test_essl_photonics_projector():
    head = ProjectionHead()
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert (head.in_dim, head.out_dim) == (1024, 256)
    assert _n_params(head) == _lin(1024, 512) + 2 * 512 + _lin(512, 512) + 2 * 512 + _lin(512, 256)
    assert head(torch.randn(5, 1024)).shape == (5, 256)


def test_simclr_cifar_projector_normalises_its_output():
    head = ProjectionHead((512, 2048, 2048), bias=False, last_norm=True).train()
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert _n_params(head) == _lin(512, 2048, False) + 2 * 2048 + _lin(2048, 2048, False)
    z = head(torch.randn(64, 512))
    torch.testing.assert_close(z.mean(0), torch.zeros(2048), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(2048), atol=1e-3, rtol=0)


def test_essl_photonics_prediction_head():
    head = PredictionHead(1024, 4)
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head.n_classes == 4 and head(torch.randn(6, 1024)).shape == (6, 4)
    assert _n_params(head) == _lin(1024, 512) + 1024 + _lin(512, 512) + 1024 + _lin(512, 4)


def test_essl_vision_prediction_head_uses_layer_norm_and_works_on_single_samples():
    head = PredictionHead(512, 4, hidden_dims=(2048, 2048), norm="layer").train()
    assert _kinds(head) == ["Linear", "LayerNorm", "ReLU", "Linear", "LayerNorm", "ReLU", "Linear"]
    x = torch.randn(3, 512)
    # LayerNorm is per sample: a row's logits do not depend on the rest of the batch.
    torch.testing.assert_close(head(x[:1]), head(x)[:1], rtol=0, atol=1e-6)


def test_batch_norm_couples_samples_in_train_mode():
    head = PredictionHead(8, 3, hidden_dims=(16,), norm="batch").train()
    x = torch.randn(4, 8)
    assert (head(x[:2]) - head(x)[:2]).abs().max() > 1e-4


def test_norm_none_has_no_norm_layers():
    head = PredictionHead(8, 3, norm="none")
    assert _kinds(head) == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]


def test_essl_photonics_regression_head():
    head = RegressionHead()
    assert _kinds(head) == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert [m.out_features for m in head if isinstance(m, nn.Linear)] == [1024, 1024, 512, 400]
    assert head(torch.randn(2, 1024)).shape == (2, 400)


def test_linear_probe_is_one_affine_map():
    probe = RegressionHead.linear_probe(256, 400)
    assert _kinds(probe) == ["Linear"] and probe.in_dim == 256 and probe.out_dim == 400
    x = torch.randn(3, 256)
    torch.testing.assert_close(probe(x), x @ probe[0].weight.T + probe[0].bias)
    assert _kinds(RegressionHead(16, 4, hidden_dims=())) == ["Linear"]


def test_mlp_bias_option():
    assert all(m.bias is None for m in MLP((4, 8, 2), bias=False) if isinstance(m, nn.Linear))


@pytest.mark.parametrize(
    "build,name",
    [
        (lambda: MLP((4,)), "dims"),
        (lambda: MLP((4, 0, 2)), "dims"),
        (lambda: ProjectionHead(norm="group"), "norm"),
        (lambda: ProjectionHead(norm="none", last_norm=True), "last_norm"),
        (lambda: PredictionHead(0, 4), "in_dim"),
        (lambda: PredictionHead(8, 0), "n_classes"),
        (lambda: RegressionHead(8, 4, hidden_dims=(8, -1)), "hidden_dims"),
        (lambda: RegressionHead(8, 0), "out_dim"),
    ],
)
def test_bad_hyper_parameters_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()
