import math

import pytest
import torch

from photossl.losses import VICRegLoss, vicreg_loss

HADAMARD_4 = torch.tensor(
    [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64
)


def _reference_terms(z1, z2, eps):
    """Bardes et al. (2022) eqs. 1-5 with loops, normalised like the authors' code (see vicreg_loss)."""
    n, d = len(z1), len(z1[0])

    def columns(z):
        means = [sum(z[b][j] for b in range(n)) / n for j in range(d)]
        return means

    def variance(z):
        m = columns(z)
        total = 0.0
        for j in range(d):
            std = math.sqrt(sum((z[b][j] - m[j]) ** 2 for b in range(n)) / (n - 1) + eps)
            total += max(0.0, 1.0 - std)
        return total / d

    def covariance(z):
        m = columns(z)
        total = 0.0
        for j in range(d):
            for k in range(d):
                if j != k:
                    c = sum((z[b][j] - m[j]) * (z[b][k] - m[k]) for b in range(n)) / (n - 1)
                    total += c * c
        return total / d

    paper_s = sum(sum((z1[b][j] - z2[b][j]) ** 2 for j in range(d)) for b in range(n)) / n
    return paper_s / d, 0.5 * (variance(z1) + variance(z2)), covariance(z1) + covariance(z2)


@pytest.mark.parametrize("batch_size", [2, 5, 32])
@pytest.mark.parametrize("dim", [1, 3, 16])
@pytest.mark.parametrize("weights", [(25.0, 25.0, 1.0), (1.0, 0.5, 3.0)])
def test_matches_loop_reference(batch_size, dim, weights):
    g = torch.Generator().manual_seed(batch_size * 100 + dim)
    # Small scale so that some columns have std < 1 and the hinge is active.
    z1 = 0.8 * torch.randn(batch_size, dim, generator=g, dtype=torch.float64)
    z2 = z1 + 0.5 * torch.randn(batch_size, dim, generator=g, dtype=torch.float64)
    invariance, variance, covariance = _reference_terms(z1.tolist(), z2.tolist(), 1e-4)
    out = vicreg_loss(z1, z2, *weights)
    assert out.invariance.item() == pytest.approx(invariance, rel=1e-10)
    assert out.variance.item() == pytest.approx(variance, rel=1e-10, abs=1e-14)
    assert out.covariance.item() == pytest.approx(covariance, rel=1e-10, abs=1e-14)
    expected = weights[0] * invariance + weights[1] * variance + weights[2] * covariance
    assert out.loss.item() == pytest.approx(expected, rel=1e-10)


def test_collapsed_embeddings_closed_form():
    # Constant rows: no invariance error, std = sqrt(eps) in every column, zero covariance.
    z = torch.ones(8, 5, dtype=torch.float64) * 0.3
    out = vicreg_loss(z, z.clone(), eps=1e-4)
    assert out.invariance.item() == 0.0
    assert out.covariance.item() == 0.0
    assert out.variance.item() == pytest.approx(1 - math.sqrt(1e-4))
    assert out.loss.item() == pytest.approx(25 * 0.99)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_decorrelated_design_closed_form(scale):
    # Hadamard columns are zero-mean and orthogonal: no covariance; each variance is scale^2 * 4 / 3.
    z = scale * HADAMARD_4[:, 1:]
    out = vicreg_loss(z, z.clone())
    std = math.sqrt(scale**2 * 4 / 3 + 1e-4)
    assert out.covariance.item() == pytest.approx(0.0, abs=1e-15)
    assert out.variance.item() == pytest.approx(max(0.0, 1 - std), abs=1e-15)
    assert out.loss.item() == pytest.approx(25 * max(0.0, 1 - std), abs=1e-13)


def test_symmetric():
    z1, z2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    for a, b in zip(vicreg_loss(z1, z2), vicreg_loss(z2, z1)):
        torch.testing.assert_close(a, b)


def test_gradcheck():
    z1 = 0.5 * torch.randn(5, 3, dtype=torch.float64)
    z2 = 0.5 * torch.randn(5, 3, dtype=torch.float64)
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: vicreg_loss(a, b, 2.0, 3.0, 0.7).loss, (z1, z2))


def test_module_matches_function():
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    out = VICRegLoss(1.0, 2.0, 3.0)(z1, z2)
    expected = vicreg_loss(z1, z2, 1.0, 2.0, 3.0)
    for a, b in zip(out, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"sim_weight": -1.0}, "sim_weight"),
        ({"var_weight": float("nan")}, "var_weight"),
        ({"cov_weight": -0.1}, "cov_weight"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_hyper_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VICRegLoss(**kwargs)
    with pytest.raises(ValueError, match=name):
        vicreg_loss(torch.randn(3, 2), torch.randn(3, 2), **kwargs)


def test_single_row_is_rejected():
    with pytest.raises(ValueError, match="at least 2 rows"):
        vicreg_loss(torch.randn(1, 2), torch.randn(1, 2))
