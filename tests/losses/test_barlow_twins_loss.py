import math

import numpy as np
import pytest
import torch

from photossl.losses import BarlowTwinsLoss, barlow_twins_loss

HADAMARD_4 = torch.tensor(
    [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64
)


def _reference_barlow_twins(z1, z2, lambda_offdiag):
    """Zbontar et al. (2021) eqs. 1-2 with loops: C_ij is the Pearson correlation of feature i of z1 and j of z2."""
    n, d = len(z1), len(z1[0])
    m1 = [sum(row[i] for row in z1) / n for i in range(d)]
    m2 = [sum(row[j] for row in z2) / n for j in range(d)]
    loss = 0.0
    for i in range(d):
        for j in range(d):
            num = sum((z1[b][i] - m1[i]) * (z2[b][j] - m2[j]) for b in range(n))
            den = math.sqrt(sum((z1[b][i] - m1[i]) ** 2 for b in range(n))) * math.sqrt(
                sum((z2[b][j] - m2[j]) ** 2 for b in range(n))
            )
            c = num / den
            loss += (1 - c) ** 2 if i == j else lambda_offdiag * c**2
    return loss


@pytest.mark.parametrize("batch_size", [2, 6, 33])
@pytest.mark.parametrize("dim", [1, 4, 12])
@pytest.mark.parametrize("lambda_offdiag", [5e-3, 0.5])
def test_matches_loop_reference(batch_size, dim, lambda_offdiag):
    g = torch.Generator().manual_seed(batch_size * 100 + dim)
    z1 = torch.randn(batch_size, dim, generator=g, dtype=torch.float64) * 3 + 1
    z2 = z1 + torch.randn(batch_size, dim, generator=g, dtype=torch.float64)
    expected = _reference_barlow_twins(z1.tolist(), z2.tolist(), lambda_offdiag)
    value = barlow_twins_loss(z1, z2, lambda_offdiag, eps=0.0).item()
    assert value == pytest.approx(expected, rel=1e-10, abs=1e-12)
    # The default eps (as in BatchNorm) only perturbs this slightly at these scales.
    assert barlow_twins_loss(z1, z2, lambda_offdiag).item() == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_decorrelated_identical_views_closed_form():
    # Hadamard columns: zero mean, unit biased variance, orthogonal, so C = I / (1 + eps).
    z = HADAMARD_4[:, 1:] * 7.0 - 2.0
    assert barlow_twins_loss(z, z.clone(), eps=0.0).item() == pytest.approx(0.0, abs=1e-15)
    eps = 1e-2
    # Standardising divides by sqrt(49 + eps) for a column of variance 49.
    c = 49.0 / (49.0 + eps)
    assert barlow_twins_loss(z, z.clone(), eps=eps).item() == pytest.approx(3 * (1 - c) ** 2, rel=1e-12)


def test_anti_correlated_views_closed_form():
    z = HADAMARD_4[:, 1:]
    # C = -I: each diagonal term is (1 - (-1))^2 = 4.
    assert barlow_twins_loss(z, -z, eps=0.0).item() == pytest.approx(12.0)


def test_identical_views_leave_only_feature_correlations():
    z = torch.randn(50, 4, dtype=torch.float64)
    r = np.corrcoef(z.numpy(), rowvar=False)
    expected = 0.1 * (np.sum(r**2) - np.sum(np.diag(r) ** 2))
    assert barlow_twins_loss(z, z.clone(), 0.1, eps=0.0).item() == pytest.approx(expected, rel=1e-10)


def test_symmetric_and_invariant_to_feature_affine_maps():
    z1, z2 = torch.randn(9, 4, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    value = barlow_twins_loss(z1, z2, eps=0.0)
    torch.testing.assert_close(barlow_twins_loss(z2, z1, eps=0.0), value)
    scale = torch.rand(4, dtype=torch.float64) + 0.5
    torch.testing.assert_close(barlow_twins_loss(z1 * scale + 3.0, z2, eps=0.0), value)


def test_gradcheck():
    z1 = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: barlow_twins_loss(a, b, 0.2), (z1, z2))


def test_module_matches_function():
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    torch.testing.assert_close(BarlowTwinsLoss(0.1)(z1, z2), barlow_twins_loss(z1, z2, 0.1))


@pytest.mark.parametrize("kwargs, name", [({"lambda_offdiag": -1e-3}, "lambda_offdiag"), ({"eps": -1.0}, "eps")])
def test_bad_hyper_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BarlowTwinsLoss(**kwargs)
    with pytest.raises(ValueError, match=name):
        barlow_twins_loss(torch.randn(3, 2), torch.randn(3, 2), **kwargs)


def test_single_row_is_rejected():
    with pytest.raises(ValueError, match="at least 2 rows"):
        barlow_twins_loss(torch.randn(1, 2), torch.randn(1, 2))
