"""Density of states from band structures: generalized Gilat-Raubenheimer (GGR), broadened histograms, SIB-CL recipe.

Normalisation: DOS(omega) counts states per unit frequency (omega a/2 pi c) per Brillouin zone, so its integral over
all frequencies equals the number of bands. The empty lattice (eps = 1, TM) has DOS = 2 pi omega below the first
truncated band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from photossl.errors import PhotosslError


def _trapezoid_cdf(u: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CDF at u of U1 + U2 + (a + b)/2 with U1 ~ U(-a/2, a/2), U2 ~ U(-b/2, b/2), a >= b >= 0."""
    tiny = 1e-300
    ab = np.maximum(a * b, tiny)
    rising = u**2 / (2 * ab)
    flat = (u - b / 2) / np.maximum(a, tiny)
    falling = 1 - (a + b - u) ** 2 / (2 * ab)
    cdf = np.where(u <= b, rising, np.where(u <= a, flat, falling))
    cdf = np.where(u <= 0, 0.0, np.where(u >= a + b, 1.0, cdf))
    return np.clip(cdf, 0.0, 1.0)


def ggr_histogram(
    frequencies: np.ndarray,
    velocities: np.ndarray,
    bin_edges: np.ndarray,
    tile_size: float | tuple[float, float],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """DOS per bin from bands linearised inside each k-tile (generalized Gilat-Raubenheimer, integrated exactly).

    Inside the square tile of side ``tile_size`` centred at each k-point, omega(k) = omega_0 + v . (k - k_0). The
    states of a tile are then distributed in frequency as a trapezoid (the sum of two uniforms); its exact mass in
    every bin is a difference of the trapezoid's CDF at the bin edges, so the histogram conserves the number of
    states and has no sampling noise.

    Args:
        frequencies: (K, n_bands) frequencies at tile centres.
        velocities: (K, n_bands, 2) group velocities d omega / dk (k in units of 2 pi/a).
        bin_edges: (n_bins + 1,) increasing frequency edges.
        tile_size: side of each tile in units of 2 pi / a (e.g. 1/25 on the SIB-CL grid), or (dk_x, dk_y).
        weights: (K,) multiplicity of each k-point (from symmetry reduction); default 1.

    Returns:
        (n_bins,) DOS per unit frequency, normalised to integrate to n_bands over the Brillouin zone.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    velocities = np.asarray(velocities, dtype=np.float64)
    if velocities.shape != frequencies.shape + (2,):
        raise PhotosslError(f"velocities must have shape {frequencies.shape + (2,)}, got {velocities.shape}")
    edges = np.asarray(bin_edges, dtype=np.float64)
    dkx, dky = (tile_size, tile_size) if np.isscalar(tile_size) else tile_size
    n_k = frequencies.shape[0]
    w = np.ones(n_k) if weights is None else np.asarray(weights, dtype=np.float64)
    total_weight = w.sum()

    omega0 = frequencies.reshape(-1)
    spread_x = np.abs(velocities[..., 0]).reshape(-1) * dkx
    spread_y = np.abs(velocities[..., 1]).reshape(-1) * dky
    a = np.maximum(spread_x, spread_y)
    b = np.minimum(spread_x, spread_y)
    state_weight = np.repeat(w, frequencies.shape[1])
    low = omega0 - (a + b) / 2
    high = omega0 + (a + b) / 2

    # Evaluate each state's CDF only at the edges inside its support; outside it is 0 or 1.
    first = np.searchsorted(edges, low, side="right")
    last = np.searchsorted(edges, high, side="left")
    counts = np.maximum(last - first, 0)
    cumulative = np.zeros(len(edges))
    # states entirely below an edge contribute 1 to it: add a step at ``last``
    np.add.at(cumulative, np.minimum(last, len(edges) - 1), np.where(last < len(edges), state_weight, 0.0))
    cumulative = np.cumsum(cumulative)
    if counts.sum():
        state = np.repeat(np.arange(len(omega0)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        edge_index = np.repeat(first, counts) + offsets
        u = edges[edge_index] - low[state]
        partial = _trapezoid_cdf(u, a[state], b[state]) * state_weight[state]
        np.add.at(cumulative, edge_index, partial)
    mass = np.diff(cumulative) / total_weight
    return mass / np.diff(edges)


def histogram_dos(
    frequencies: np.ndarray,
    bin_edges: np.ndarray,
    weights: np.ndarray | None = None,
    broadening: float = 0.0,
) -> np.ndarray:
    """DOS per bin from a plain (optionally Gaussian-broadened, sigma = ``broadening``) histogram of frequencies.

    frequencies: (K, n_bands); weights: (K,) multiplicities. Normalised to integrate to n_bands.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    edges = np.asarray(bin_edges, dtype=np.float64)
    n_k = frequencies.shape[0]
    w = np.ones(n_k) if weights is None else np.asarray(weights, dtype=np.float64)
    state_weight = np.repeat(w, frequencies.shape[1]) / w.sum()
    values = frequencies.reshape(-1)
    if broadening > 0:
        from scipy.special import erf

        scaled = (edges[None, :] - values[:, None]) / (np.sqrt(2) * broadening)
        cdf = 0.5 * (1 + erf(scaled))
        mass = (np.diff(cdf, axis=1) * state_weight[:, None]).sum(axis=0)
    else:
        mass, _ = np.histogram(values, bins=edges, weights=state_weight)
    return mass / np.diff(edges)


@dataclass(frozen=True)
class SibclDos:
    """The SIB-CL DOS label on the scaled frequency axis omega * sqrt(mean eps)."""

    freq: np.ndarray  # (n_points,) scaled frequencies, linspace(0, 1.2, 500)[:n_keep]
    dos: np.ndarray  # (n_points,) DOS vs scaled frequency (the reference's 'DOS')
    dos_normalized: np.ndarray  # dos / sqrt(mean eps) (the reference's 'DOSn')
    eldiff: np.ndarray  # dos_normalized - 2 pi freq (the reference's 'DOSeldiffn', the regression target)


def empty_lattice_dos(freq: np.ndarray) -> np.ndarray:
    """TM DOS of the empty lattice on the scaled frequency axis: 2 pi omega."""
    return 2 * np.pi * np.asarray(freq)


def sibcl_dos(
    frequencies: np.ndarray,
    velocities: np.ndarray | None,
    eps_mean: float,
    tile_size: float = 1.0 / 25,
    weights: np.ndarray | None = None,
    n_fine_bins: int = 2000,
    sigma_bins: float = 10.0,
    n_points: int = 500,
    max_freq: float = 1.2,
    n_keep: int = 400,
    range_factor: float = 1.05,
) -> SibclDos:
    """The SIB-CL DOS label (Loh et al. 2022), as a documented recipe.

    The reference uses 20000 bins and sigma = 100 bins; because GGR integrates each bin exactly, 2000 bins with the
    same sigma in frequency (10 bins, the default) agree with it to < 0.1 % relative L1 at a tenth of the cost.

    1. DOS on ``n_fine_bins`` bins over [0, range_factor * max omega] by GGR (or a plain histogram when velocities is
       None); 2. drop the first bin (it holds the omega = 0 state at Gamma); 3. gaussian_filter1d with sigma =
    ``sigma_bins`` bins; 4. relabel the frequency axis omega -> omega sqrt(mean eps) (values unchanged, as the reference
    does); 5. interpolate onto linspace(0, max_freq, n_points) and keep the first ``n_keep`` points; 6. divide by
    sqrt(mean eps) and subtract the empty-lattice DOS 2 pi omega.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if not np.all(np.isfinite(frequencies)):
        raise PhotosslError("band frequencies contain NaN or infinite values")
    if eps_mean <= 0 or not np.isfinite(eps_mean):
        raise PhotosslError(f"mean permittivity must be finite and > 0, got {eps_mean}")
    top = range_factor * float(frequencies.max())
    edges = np.linspace(0.0, top, n_fine_bins + 1)
    if velocities is None:
        fine = histogram_dos(frequencies, edges, weights)
    else:
        fine = ggr_histogram(frequencies, velocities, edges, tile_size, weights)
    centres = 0.5 * (edges[1:] + edges[:-1])
    centres, fine = centres[1:], fine[1:]
    smoothed = gaussian_filter1d(fine, sigma_bins)
    scale = np.sqrt(eps_mean)
    freq = np.linspace(0.0, max_freq, n_points)
    dos = np.interp(freq, centres * scale, smoothed, right=0.0)
    freq, dos = freq[:n_keep], dos[:n_keep]
    normalized = dos / scale
    return SibclDos(freq, dos, normalized, normalized - empty_lattice_dos(freq))


def richardson_dos(fine: SibclDos, coarse: SibclDos, fine_grid: int, coarse_grid: int) -> SibclDos:
    """The DOS label extrapolated to an infinitely fine k-grid from GGR labels on two grids of whole tiles.

    GGR's error (bands linear inside each tile) falls as the tile area, 1/n^2, so (N^2 D_N - n^2 D_n) / (N^2 - n^2)
    cancels the leading term: from the 25 x 25 and 50 x 50 grids it lands about as close to a converged DOS as a
    100 x 100 grid alone. Clipped at zero: inside a gap the combination can dip a hair (~1e-6) below it.
    """
    if fine_grid == coarse_grid:
        raise PhotosslError(f"Richardson extrapolation needs two different grids, got {fine_grid} twice")
    if not np.array_equal(fine.freq, coarse.freq):
        raise PhotosslError("Richardson extrapolation needs both DOS on the same frequencies")
    a, b = fine_grid**2, coarse_grid**2

    def combine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.maximum((a * x - b * y) / (a - b), 0.0)

    normalized = combine(fine.dos_normalized, coarse.dos_normalized)
    return SibclDos(fine.freq, combine(fine.dos, coarse.dos), normalized, normalized - empty_lattice_dos(fine.freq))
