import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from photossl.errors import PhotosslError
from photossl.evaluation import (
    composition_errors,
    fit_orbit_rotations,
    invariance_error,
    product_table,
    relative_rotational_equivariance,
)
from photossl.symmetry import D4, Flips, HalfTranslations, Rot4


def slow_gamma(z, z_g):
    """CARE's relative rotational equivariance for one augmentation, from the paper's formula, over pairs i < j
    (pairs that the augmentation leaves in place, 0/0, left out)."""
    values = []
    for i, j in itertools.combinations(range(len(z)), 2):
        num = (np.sum((z_g[j] - z_g[i]) ** 2) - np.sum((z[j] - z[i]) ** 2)) ** 2
        den = (np.sum((z_g[j] - z[j]) ** 2) + np.sum((z_g[i] - z[i]) ** 2)) ** 2
        if den > 0:
            values.append(num / den)
    return float(np.mean(values)) if values else math.nan


def random_rotation(d, rng):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def test_gamma_is_zero_for_an_orthogonal_action():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 6))
    z_g = z @ random_rotation(6, rng).T
    assert relative_rotational_equivariance(z, z_g) < 1e-20
    assert slow_gamma(z, z_g) < 1e-20


def test_gamma_closed_form_for_a_scaling():
    # f(gx) = c f(x): every pair gives
    # ((c² − 1) ‖z_i − z_j‖²)² / ((c − 1)² (‖z_i‖² + ‖z_j‖²))².
    rng = np.random.default_rng(1)
    z = rng.normal(size=(12, 4))
    c = 1.5
    expected = np.mean(
        [
            ((c**2 - 1) * np.sum((z[i] - z[j]) ** 2)) ** 2 / ((c - 1) ** 2 * (z[i] @ z[i] + z[j] @ z[j])) ** 2
            for i, j in itertools.combinations(range(12), 2)
        ]
    )
    assert relative_rotational_equivariance(z, c * z) == pytest.approx(expected, rel=1e-10)


def test_gamma_matches_the_slow_formula_on_random_embeddings():
    rng = np.random.default_rng(2)
    z, z_g = rng.normal(size=(15, 5)), rng.normal(size=(15, 5))
    value = relative_rotational_equivariance(torch.tensor(z), torch.tensor(z_g))
    assert value > 0.01
    assert value == pytest.approx(slow_gamma(z, z_g), rel=1e-10)


def test_gamma_of_an_invariant_function_is_undefined():
    z = np.random.default_rng(3).normal(size=(10, 3))
    assert math.isnan(relative_rotational_equivariance(z, z.copy()))
    # Only pairs that the transformation leaves entirely in place are dropped.
    z_g = z.copy()
    z_g[:4] = -z[:4]
    assert relative_rotational_equivariance(z, z_g) == pytest.approx(slow_gamma(z, z_g), rel=1e-10)


def test_invariance_error_by_hand():
    z = np.array([[0.0, 0.0], [3.0, 4.0]])
    z_g = np.array([[1.0, 0.0], [3.0, 4.0]])
    # moved: (1 + 0) / 2; mean distance between distinct cells: 5
    assert invariance_error(z, z_g) == pytest.approx(0.1)


def pooled_features(x):
    """Global averages of pixelwise and circularly padded conv features: invariant to periodic translations."""
    weight = torch.tensor([[[[0.0, 1.0, 0.0], [1.0, -4.0, 2.0], [0.0, 0.5, 0.0]]]], dtype=x.dtype)
    conv = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), weight)
    maps = torch.cat([x, x**2, torch.relu(conv), conv**2], dim=1)
    return maps.mean(dim=(-2, -1))


def test_invariance_error_zero_for_an_invariant_encoder():
    x = torch.rand(16, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    shifted = torch.roll(x, shifts=(3, 5), dims=(-2, -1))
    assert invariance_error(pooled_features(x), pooled_features(shifted)) < 1e-12
    assert invariance_error(x.flatten(1), shifted.flatten(1)) > 0.1


def test_composition_closed_form_for_planar_rotations():
    def rot(angle):
        return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])

    products = np.add.outer(np.arange(4), np.arange(4)) % 4  # Z4
    exact = np.stack([rot(k * math.pi / 2) for k in range(4)])
    assert np.abs(composition_errors(exact, products)).max() < 1e-12
    delta = 0.1
    perturbed = exact.copy()
    perturbed[1] = rot(math.pi / 2 + delta)
    errors = composition_errors(perturbed, products)
    # ‖R(φ) − I‖_F / √2 = 2 |sin(φ/2)|; the pair (1, 1) is off by φ = 2δ, the pair (1, 2) by φ = δ.
    assert errors[1, 1] == pytest.approx(2 * math.sin(delta), rel=1e-12)
    assert errors[1, 2] == pytest.approx(2 * math.sin(delta / 2), rel=1e-12)
    assert errors[2, 2] == pytest.approx(0.0, abs=1e-12)


def flatten_orbits(group, x):
    views, _ = group.expand(x)
    return views.flatten(1).reshape(group.order, x.shape[0], -1)


@pytest.mark.parametrize("group", [Rot4(), Flips(), HalfTranslations(), D4()])
def test_a_permutation_representation_composes_exactly(group):
    # f(x) = flatten(x): every group element permutes the pixels, an exact group action on embedding space.
    # 16 cells: fewer may leave part of a group's fixed subspace unseen (9-dim for the flips of a 4×4 grid).
    x = torch.rand(16, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    orbits = flatten_orbits(group, x)
    products = product_table(group)
    fit = fit_orbit_rotations(orbits, products)
    assert fit.rotations.shape == (group.order, 16, 16)
    assert np.abs(composition_errors(fit.rotations, products)).max() < 1e-10
    assert np.abs(composition_errors(fit.rotations, products, fit.points)).max() < 1e-10
    # The fitted maps are the pixel permutations themselves (the orbits span all of R^16).
    basis = fit.basis.numpy()
    for label in range(group.order):
        permutation = group.apply(torch.eye(16, dtype=torch.float64).reshape(16, 4, 4), label).reshape(16, 16).T
        np.testing.assert_allclose(basis @ fit.rotations[label].numpy() @ basis.T, permutation.numpy(), atol=1e-10)


def test_a_nonlinear_encoder_does_not_compose():
    group = Rot4()
    x = torch.rand(8, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(16, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    orbits = torch.tanh(flatten_orbits(group, x) @ weight)
    products = product_table(group)
    fit = fit_orbit_rotations(orbits, products)
    assert composition_errors(fit.rotations, products)[1:, 1:].mean() > 1e-3


def test_fewer_cells_than_dimensions_use_the_orbit_span():
    # 2 cells × 4 rotations = 8 orbit points in R^16: R_g is fitted in their 8-dim span, still exactly.
    group = Rot4()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    orbits = flatten_orbits(group, x)
    products = product_table(group)
    fit = fit_orbit_rotations(orbits, products)
    assert fit.basis.shape == (16, 8)
    assert np.abs(composition_errors(fit.rotations, products)).max() < 1e-10


def test_bad_inputs_are_rejected():
    with pytest.raises(PhotosslError, match="at least 2"):
        invariance_error(np.ones((1, 3)), np.ones((1, 3)))
    with pytest.raises(PhotosslError, match="products"):
        fit_orbit_rotations(np.random.rand(4, 5, 3), np.zeros((3, 3), dtype=int))
    with pytest.raises(PhotosslError, match="rotations"):
        composition_errors(np.ones((4, 2, 3)), np.zeros((4, 4), dtype=int))
    with pytest.raises(PhotosslError, match="rtol"):
        relative_rotational_equivariance(np.ones((3, 2)), np.ones((3, 2)), rtol=-1.0)
