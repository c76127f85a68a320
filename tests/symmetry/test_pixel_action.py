"""Exactness of the pixel actions: rotations and mirrors about pixel 0, rolls, ε scaling."""

import numpy as np
import pytest
import torch

from photossl.symmetry import D4, D4_MATRICES, Element, HalfTranslations, vectorised_roll


def symmetrise_about_pixel_zero(cell: np.ndarray) -> np.ndarray:
    """Average of a cell over D4 about pixel 0, from index arithmetic alone (i -> -i mod N)."""
    n = cell.shape[0]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    out = np.zeros_like(cell)
    for (a, b), (c, d) in D4_MATRICES:
        out += cell[(a * i + b * j) % n, (c * i + d * j) % n]
    return out / 8


@pytest.mark.parametrize("n", [7, 8])
def test_symmetric_cell_is_invariant_under_d4_about_pixel_zero(n):
    rng = np.random.default_rng(0)
    cell = torch.from_numpy(symmetrise_about_pixel_zero(rng.normal(size=(n, n))))
    for g in D4():
        torch.testing.assert_close(g.apply(cell), cell, rtol=0, atol=1e-14)
    # torch.rot90 turns about the centre of the image, which does not fix this cell.
    assert not torch.allclose(torch.rot90(cell, 1), cell)


def test_half_turn_maps_i_to_minus_i_mod_n():
    n = 5
    x = torch.arange(n * n).reshape(n, n)
    idx = (-torch.arange(n)) % n
    assert torch.equal(Element.rotation(2).apply(x), x[idx][:, idx])
    assert torch.equal(Element.mirror("x").apply(x), x[idx])
    assert torch.equal(Element.mirror("y").apply(x), x[:, idx])
    assert torch.equal(Element.mirror("diagonal").apply(x), x.T)


@pytest.mark.parametrize("n", [5, 8])
def test_relation_to_rot90_and_flip(n):
    # Pixel-0 operations are torch.rot90 / torch.flip followed by a one-pixel roll.
    x = torch.randn(2, 3, n, n)
    expected = {
        Element.rotation(1): torch.roll(torch.rot90(x, 1, (-2, -1)), (1, 0), (-2, -1)),
        Element.rotation(2): torch.roll(torch.rot90(x, 2, (-2, -1)), (1, 1), (-2, -1)),
        Element.rotation(3): torch.roll(torch.rot90(x, 3, (-2, -1)), (0, 1), (-2, -1)),
        Element.mirror("x"): torch.roll(torch.flip(x, (-2,)), 1, -2),
        Element.mirror("y"): torch.roll(torch.flip(x, (-1,)), 1, -1),
        Element.mirror("diagonal"): x.transpose(-2, -1),
    }
    for g, want in expected.items():
        assert torch.equal(g.apply(x), want), g


def test_translation_is_torch_roll():
    x = torch.randn(2, 1, 9, 9)
    for dx, dy in [(0, 0), (1, 0), (0, 4), (-3, 11), (8, 8)]:
        assert torch.equal(Element.translation(dx, dy, 9).apply(x), torch.roll(x, (dx, dy), (-2, -1)))


def test_translation_that_is_not_whole_pixels_is_rejected():
    with pytest.raises(ValueError, match="whole number of pixels"):
        Element.translation(1, 0, 2).apply(torch.zeros(1, 1, 9, 9))


def test_half_translations_need_an_even_grid():
    with pytest.raises(ValueError, match="whole number of pixels"):
        HalfTranslations().expand(torch.zeros(2, 1, 9, 9))


def test_vectorised_roll_equals_per_sample_roll():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, 5, 7, generator=g)  # non-square is allowed for rolls
    shifts = torch.randint(-20, 20, (6, 2), generator=g)
    out = vectorised_roll(x, shifts)
    for b in range(6):
        assert torch.equal(out[b], torch.roll(x[b], tuple(shifts[b].tolist()), (-2, -1)))


def test_vectorised_roll_rejects_bad_shifts():
    x = torch.zeros(3, 1, 4, 4)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        vectorised_roll(x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integers"):
        vectorised_roll(x, torch.zeros(3, 2))


def test_non_square_cells_are_rejected():
    with pytest.raises(ValueError, match=r"\(\.\.\., N, N\)"):
        Element.rotation(1).apply(torch.zeros(1, 1, 4, 5))


def test_scaling_acts_on_raw_eps():
    eps = 1 + 19 * torch.rand(2, 1, 4, 4, dtype=torch.float64)
    g = Element.scaling(0.5) @ Element.rotation(1)
    torch.testing.assert_close(g.apply(eps), 0.5 * Element.rotation(1).apply(eps))
    # On the network input u = (eps - 1)/19 the same element must scale eps, not u.
    u = (eps - 1) / 19
    torch.testing.assert_close(g.apply(u, eps_normalisation=(1.0, 19.0)), (g.apply(eps) - 1) / 19)
    assert not torch.allclose(g.apply(u), (g.apply(eps) - 1) / 19)


def test_dtype_shape_and_device_are_kept():
    for x in (torch.randn(8, 8), torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.randint(0, 5, (4, 1, 8, 8))):
        out = Element.rotation(1).apply(x)
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
