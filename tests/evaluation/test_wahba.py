import math

import numpy as np
import pytest
import torch

from photossl.errors import PhotosslError
from photossl.evaluation import wahba_error, wahba_rotation


def random_orthogonal(d, rng, det=1.0):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    if np.sign(np.linalg.det(q)) != det:
        q[:, 0] = -q[:, 0]
    return q


@pytest.mark.parametrize("d", [2, 3, 16, 128])
def test_zero_for_a_known_rotation(d):
    rng = np.random.default_rng(d)
    rotation = random_orthogonal(d, rng)
    F = rng.normal(size=(d + 20, d))
    F_g = F @ rotation.T  # rows: f(g x_i) = R f(x_i)
    assert wahba_error(F, F_g) < 1e-10
    fitted = wahba_rotation(F, F_g)
    np.testing.assert_allclose(fitted, rotation, atol=1e-10)
    assert np.linalg.det(fitted) == pytest.approx(1.0, abs=1e-9)
    # Torch input gives the same, as a tensor.
    fitted_t = wahba_rotation(torch.tensor(F, dtype=torch.float64), torch.tensor(F_g, dtype=torch.float64))
    assert isinstance(fitted_t, torch.Tensor)
    np.testing.assert_allclose(fitted_t.numpy(), rotation, atol=1e-10)
    assert wahba_error(torch.tensor(F), torch.tensor(F_g)) < 1e-10


@pytest.mark.parametrize("d", [2, 3, 16, 128])
def test_reflections_need_o_d(d):
    rng = np.random.default_rng(100 + d)
    reflection = random_orthogonal(d, rng, det=-1.0)
    F = rng.normal(size=(2 * d + 10, d))
    F_g = F @ reflection.T
    assert wahba_error(F, F_g, proper=False) < 1e-10
    assert wahba_error(F, F_g, proper=True) > 1e-3
    fitted = wahba_rotation(F, F_g, proper=True)
    np.testing.assert_allclose(fitted @ fitted.T, np.eye(d), atol=1e-10)
    assert np.linalg.det(fitted) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(wahba_rotation(F, F_g, proper=False), reflection, atol=1e-10)


def test_positive_for_noise_and_grows_with_it():
    rng = np.random.default_rng(1)
    d = 16
    rotation = random_orthogonal(d, rng)
    F = rng.normal(size=(200, d))
    errors = [wahba_error(F, F @ rotation.T + s * rng.normal(size=F.shape)) for s in (1e-3, 1e-1)]
    assert 1e-4 < errors[0] < errors[1] < 0.2
    assert wahba_error(F, rng.normal(size=F.shape)) > 0.5  # unrelated embeddings


def test_closed_form_in_two_dimensions():
    # In 2-D the best rotation angle is atan2(Σ a×b, Σ a·b); compare the error with a brute-force angle scan too.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    theta = math.atan2(np.sum(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]), np.sum(a * b))
    best = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    np.testing.assert_allclose(wahba_rotation(a, b), best, atol=1e-12)
    scan = min(
        np.linalg.norm(a @ np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]]) - b)
        for t in np.linspace(0, 2 * math.pi, 20001)
    )
    assert wahba_error(a, b) == pytest.approx(scan / np.linalg.norm(b), rel=1e-6)


def test_relative_error_ignores_the_overall_scale():
    rng = np.random.default_rng(3)
    F, F_g = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    reference = wahba_error(F, F_g)
    for scale in (1e-3, 7.0, 1e4):
        assert wahba_error(scale * F, scale * F_g) == pytest.approx(reference, rel=1e-10)


def test_normalize_removes_per_row_lengths():
    rng = np.random.default_rng(4)
    rotation = random_orthogonal(8, rng)
    F = rng.normal(size=(40, 8))
    F_g = (F @ rotation.T) * rng.uniform(0.5, 2.0, size=(40, 1))  # rotated, then each row rescaled
    assert wahba_error(F, F_g) > 1e-3
    assert wahba_error(F, F_g, normalize=True) < 1e-10


def test_float32_tensors_are_accepted():
    rng = np.random.default_rng(5)
    rotation = random_orthogonal(4, rng)
    F = torch.tensor(rng.normal(size=(20, 4)), dtype=torch.float32)
    F_g = F @ torch.tensor(rotation.T, dtype=torch.float32)
    assert wahba_error(F, F_g) < 1e-6


def test_bad_shapes_are_rejected():
    with pytest.raises(PhotosslError, match="one shape"):
        wahba_error(np.ones((5, 3)), np.ones((5, 4)))
    with pytest.raises(PhotosslError, match="one shape"):
        wahba_rotation(np.ones(5), np.ones(5))
    with pytest.raises(PhotosslError, match="all zeros"):
        wahba_error(np.ones((5, 3)), np.zeros((5, 3)))
