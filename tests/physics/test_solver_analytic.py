"""The band solver against analytic results: the empty lattice, eps scaling, the textbook rod crystal."""

import numpy as np
import pytest
import torch

from photossl.errors import PhotosslError
from photossl.physics import (
    plane_wave_basis,
    rods_cell,
    sibcl_grid,
    solve_bands,
    solve_bands_full,
)
from photossl.physics.solver_options import PRESETS


def empty_lattice(kpoints, eps, cutoff, n_bands):
    g = plane_wave_basis(cutoff).g
    return np.sort(np.linalg.norm(kpoints[:, None, :] + g[None], axis=2), axis=1)[:, :n_bands] / np.sqrt(eps)


@pytest.mark.parametrize("polarization", ["tm", "te"])
@pytest.mark.parametrize("eps_value", [1.0, 2.5, 13.0])
def test_empty_lattice_matches_free_photons(polarization, eps_value):
    kpoints = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.13, -0.37], [-0.48, 0.24]])
    eps = np.full((16, 16), eps_value)
    bands = solve_bands(eps, kpoints, polarization, n_bands=12, cutoff=6, anchor_spacing=None)
    np.testing.assert_allclose(bands, empty_lattice(kpoints, eps_value, 6, 12), atol=1e-10, rtol=0)


@pytest.mark.parametrize("polarization", ["tm", "te"])
@pytest.mark.parametrize("preset", ["fast", "standard", "high"])
def test_empty_lattice_exact_with_every_preset(polarization, preset):
    """Each preset interpolates between anchors; on the empty lattice plane waves do not mix, so the bands are exact.
    The presets' interpolation settings are tested at |G| <= 6 (their larger bases only add plane waves far above
    these bands); single-precision reduced problems are exact to their precision."""
    kpoints = np.concatenate([sibcl_grid(7), [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]]])
    eps = np.full((16, 16), 2.5)
    options = PRESETS[preset].replace(cutoff=6.0, te_cutoff=None)
    bands = solve_bands(eps, kpoints, polarization, 10, options=options)
    expected = empty_lattice(kpoints, 2.5, 6, 10)
    np.testing.assert_allclose(bands, expected, atol=1e-10, rtol=0)
    single = solve_bands(eps, kpoints, polarization, 10, options=options.replace(reduced_precision="single"))
    np.testing.assert_allclose(single, expected, rtol=1e-6)


@pytest.mark.parametrize("polarization", ["tm", "te"])
def test_empty_lattice_with_kp_interpolation(polarization):
    kpoints = sibcl_grid(9)
    eps = np.full((16, 16), 4.0)
    bands = solve_bands(eps, kpoints, polarization, n_bands=8, cutoff=5, anchor_spacing=0.25,
                        reduced_precision="double")
    np.testing.assert_allclose(bands, empty_lattice(kpoints, 4.0, 5, 8), atol=1e-10, rtol=0)


@pytest.mark.parametrize("polarization", ["tm", "te"])
def test_eps_scaling_scales_frequencies(random_cell, polarization):
    kpoints = np.array([[0.1, 0.2], [0.5, 0.5], [-0.3, 0.05]])
    base = solve_bands(random_cell, kpoints, polarization, 8, cutoff=4, anchor_spacing=None)
    for s in (0.5, 3.0):
        scaled = solve_bands(s * random_cell, kpoints, polarization, 8, cutoff=4, anchor_spacing=None)
        np.testing.assert_allclose(scaled, base / np.sqrt(s), rtol=1e-10)


def test_textbook_rod_crystal_gap():
    """eps = 8.9 rods, r = 0.2a, TM: gap from band 1 at M to band 2 at X; MPB res 32 gives 0.3227-0.4424."""
    rods = rods_cell(0.2, 8.9, 1.0, n=64, supersample=8)
    bands = solve_bands(rods, np.array([[0.5, 0.5], [0.5, 0.0]]), "tm", 3, cutoff=7)
    lower, upper = bands[0, 0], bands[1, 1]
    assert abs(lower - 0.3227) / 0.3227 < 0.01
    assert abs(upper - 0.4424) / 0.4424 < 0.01


def test_batched_equals_single_and_float32(random_cell):
    kpoints = np.array([[0.1, 0.2], [0.4, 0.3]])
    batch = np.stack([random_cell, random_cell.T, 2 * random_cell])
    together = solve_bands(batch, kpoints, "tm", 6, cutoff=4)
    assert together.shape == (3, 2, 6)
    for i in range(3):
        np.testing.assert_allclose(together[i], solve_bands(batch[i], kpoints, "tm", 6, cutoff=4), rtol=1e-12)
    single = solve_bands(random_cell, kpoints, "tm", 6, cutoff=4, dtype=torch.float32)
    np.testing.assert_allclose(single, together[0], rtol=1e-4)


def test_kp_interpolation_close_to_direct(random_cell):
    kpoints = sibcl_grid(25)[::3]
    for polarization in ("tm", "te"):
        direct = solve_bands(random_cell, kpoints, polarization, 10, cutoff=4, anchor_spacing=None)
        interpolated = solve_bands(random_cell, kpoints, polarization, 10, cutoff=4, anchor_spacing=0.25,
                                   reduced_precision="double")
        relative = np.abs(interpolated[:, 1:] - direct[:, 1:]) / direct[:, 1:]
        assert relative.max() < 5e-4
        assert (interpolated[:, 1:] >= direct[:, 1:] - 1e-12).all()  # Rayleigh-Ritz values are upper bounds


def test_group_velocities_match_finite_differences(random_cell):
    kpoints = np.array([[0.13, 0.27], [0.31, -0.07]])
    step = 1e-6
    for polarization in ("tm", "te"):
        result = solve_bands_full(random_cell, kpoints, polarization, 6, cutoff=4, group_velocities=True,
                                  anchor_spacing=None)
        for axis in (0, 1):
            shift = np.zeros(2)
            shift[axis] = step
            numeric = (
                solve_bands(random_cell, kpoints + shift, polarization, 6, cutoff=4, anchor_spacing=None)
                - solve_bands(random_cell, kpoints - shift, polarization, 6, cutoff=4, anchor_spacing=None)
            ) / (2 * step)
            np.testing.assert_allclose(result.group_velocities[0, ..., axis], numeric, atol=1e-7)


def test_eigenvectors_solve_the_plane_wave_problem(random_cell):
    """TM eigenvectors e satisfy |k+G|^2 e = omega^2 [eps] e in the plane-wave basis."""
    from photossl.physics.solver import pixel_fourier_coefficients

    kpoints = np.array([[0.2, 0.1]])
    result = solve_bands_full(random_cell, kpoints, "tm", 4, cutoff=3, eigenvectors=True, anchor_spacing=None)
    g = result.basis.g
    toeplitz = pixel_fourier_coefficients(torch.as_tensor(random_cell)[None], g[:, None] - g[None])[0].numpy()
    e = result.eigenvectors[0, 0]
    lhs = (np.linalg.norm(kpoints[0] + g, axis=1) ** 2)[:, None] * e
    rhs = toeplitz @ e * result.frequencies[0, 0] ** 2
    np.testing.assert_allclose(lhs, rhs, atol=1e-9)


@pytest.mark.parametrize(
    "eps, message",
    [
        (np.full((8, 8), np.nan), "NaN"),
        (np.full((8, 8), -1.0), "> 0"),
        (np.zeros((8, 8)), "> 0"),
        (np.ones((8, 6)), "square"),
        (np.ones(8), "2-D"),
    ],
)
def test_bad_permittivity_is_refused(eps, message):
    with pytest.raises(PhotosslError, match=message):
        solve_bands(eps, np.zeros((1, 2)))


def test_bad_options_are_refused():
    with pytest.raises(PhotosslError, match="polarization"):
        solve_bands(np.ones((8, 8)), np.zeros((1, 2)), polarization="xx")
    with pytest.raises(PhotosslError, match="k-points"):
        solve_bands(np.ones((8, 8)), np.zeros((3, 3)))
    with pytest.raises(PhotosslError, match="n_bands"):
        solve_bands(np.ones((8, 8)), np.zeros((1, 2)), n_bands=1000, cutoff=2)


def test_single_precision_reduced_problems_match_double(random_cell):
    kpoints = sibcl_grid(25)[::5]
    options = dict(cutoff=4, anchor_spacing=0.25)
    double = solve_bands_full(random_cell, kpoints, "tm", 8, group_velocities=True, reduced_precision="double",
                              **options)
    single = solve_bands_full(random_cell, kpoints, "tm", 8, group_velocities=True, reduced_precision="single",
                              **options)
    np.testing.assert_allclose(single.frequencies, double.frequencies, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(single.group_velocities, double.group_velocities, atol=2e-3)
    with pytest.raises(PhotosslError, match="reduced_precision"):
        solve_bands(random_cell, kpoints, reduced_precision="half")
