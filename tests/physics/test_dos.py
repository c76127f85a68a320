"""DOS: normalisation, GGR vs a broadened histogram on a dense grid, the SIB-CL recipe on the empty lattice."""

import numpy as np

from photossl.physics import monkhorst_pack_grid, reduce_kpoints, solve_bands_full
from photossl.physics.dos import ggr_histogram, histogram_dos, sibcl_dos
from photossl.physics.gaps import band_gaps, gap_table


def _bands(cell, n, cutoff=3.0):
    kpoints = monkhorst_pack_grid(n)
    irreducible = reduce_kpoints(kpoints)
    result = solve_bands_full(cell, kpoints[irreducible.indices], "tm", 6, cutoff=cutoff, group_velocities=True)
    return result.frequencies[0], result.group_velocities[0], irreducible.weights


def test_ggr_integrates_to_number_of_bands(random_cell):
    freqs, vels, weights = _bands(random_cell, 10)
    edges = np.linspace(0, 1.2 * freqs.max(), 400)
    dos = ggr_histogram(freqs, vels, edges, 0.1, weights)
    assert abs((dos * np.diff(edges)).sum() - 6) < 1e-10
    assert (dos >= 0).all()


def test_ggr_of_a_single_linear_band_is_exact():
    """One tile, omega = 1 + 0.3 q_x + 0.1 q_y over a unit square: a trapezoid with known mass in each bin."""
    freqs = np.array([[1.0]])
    vels = np.array([[[0.3, 0.1]]])
    edges = np.linspace(0.7, 1.3, 61)
    dos = ggr_histogram(freqs, vels, edges, 1.0)
    rng = np.random.default_rng(0)
    q = rng.uniform(-0.5, 0.5, (2_000_000, 2))
    samples = 1 + 0.3 * q[:, 0] + 0.1 * q[:, 1]
    reference, _ = np.histogram(samples, edges, density=True)
    assert np.abs(dos - reference).max() < 0.08
    centre = np.searchsorted(edges, 1.0) - 1
    assert abs(dos[centre] - 1 / 0.3) < 1e-9  # flat top of the trapezoid: density 1/a


def test_ggr_on_coarse_grid_agrees_with_broadened_histogram_on_dense_grid(random_cell):
    freqs_c, vels_c, w_c = _bands(random_cell, 12)
    freqs_d, _, w_d = _bands(random_cell, 48)
    edges = np.linspace(0.0, 0.9 * freqs_c.max(), 121)
    coarse = ggr_histogram(freqs_c, vels_c, edges, 1 / 12, w_c)
    dense = histogram_dos(freqs_d, edges, w_d, broadening=0.0)
    from scipy.ndimage import gaussian_filter1d

    smooth_c, smooth_d = gaussian_filter1d(coarse, 2), gaussian_filter1d(dense, 2)
    relative_l1 = np.abs(smooth_c - smooth_d)[10:].sum() / np.abs(smooth_d)[10:].sum()
    assert relative_l1 < 0.03
    histogram_coarse = gaussian_filter1d(histogram_dos(freqs_c, edges, w_c), 2)
    assert np.abs(histogram_coarse - smooth_d)[10:].sum() / np.abs(smooth_d)[10:].sum() > relative_l1


def test_broadened_histogram_normalised():
    freqs = np.random.default_rng(1).uniform(0.2, 0.8, (50, 4))
    edges = np.linspace(0, 1, 501)
    dos = histogram_dos(freqs, edges, broadening=0.01)
    assert abs((dos * np.diff(edges)).sum() - 4) < 1e-6


def test_sibcl_target_vanishes_for_the_empty_lattice():
    eps = np.full((16, 16), 3.0)
    freqs, vels, weights = _bands(eps, 25, cutoff=4)
    label = sibcl_dos(freqs, vels, 3.0, 1 / 25, weights)
    assert label.freq.shape == (400,) and label.eldiff.shape == (400,)
    # 6 bands are complete up to omega*sqrt(eps) = 1 at M-like points; compare inside that range
    window = (label.freq > 0.1) & (label.freq < 0.45)
    assert np.abs(label.eldiff[window]).max() < 0.05 * (2 * np.pi * label.freq[window]).max()
    np.testing.assert_allclose(label.dos_normalized, label.dos / np.sqrt(3.0))


def test_band_gaps():
    freqs = np.array([[0.1, 0.4, 0.45], [0.3, 0.5, 0.6], [0.2, 0.42, 0.7]])
    gaps = band_gaps(freqs)
    assert len(gaps) == 1 and gaps[0].lower_band == 1
    assert gaps[0].lower_edge == 0.3 and gaps[0].upper_edge == 0.4
    assert abs(gaps[0].gap_to_midgap - 0.1 / 0.35) < 1e-12
    table = gap_table(freqs)
    assert table.shape == (2, 3) and table[1, 2] == 0.0
