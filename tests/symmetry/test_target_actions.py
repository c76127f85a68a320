"""Actions of symmetry elements on targets: invariant DOS/gaps, scaled frequencies, permuted band k-points.

For a real-space operation r -> P r, bands_{g·ε}(k) = bands_ε(Pᵀ k). Real permittivities also give
bands(k) = bands(−k), so band structures alone cannot tell Pᵀ k from P k (they differ by a sign for D4); the
convention is pinned by the brute-force image table and the composition law below.
"""

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from photossl.symmetry import (
    D4,
    TARGET_NAMES,
    Element,
    ElementBatch,
    Rot4,
    kpoint_permutation,
    kpoint_permutation_table,
    transform_target,
    transform_target_batch,
    transform_target_labels,
)

# Pᵀ k for each D4 label, written out by hand from the matrices R^k m_x^f.
TRANSPOSED_IMAGE = {
    0: lambda kx, ky: (kx, ky),
    1: lambda kx, ky: (ky, -kx),
    2: lambda kx, ky: (-kx, -ky),
    3: lambda kx, ky: (-ky, kx),
    4: lambda kx, ky: (-kx, ky),
    5: lambda kx, ky: (-ky, -kx),
    6: lambda kx, ky: (kx, -ky),
    7: lambda kx, ky: (ky, kx),
}


def sibcl_grid(shuffle_seed=None) -> np.ndarray:
    axis = np.linspace(-0.48, 0.48, 25)
    k = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    if shuffle_seed is not None:
        k = k[np.random.default_rng(shuffle_seed).permutation(len(k))]
    return k


def small_orbit_set() -> np.ndarray:
    seeds = [(0.1, 0.3), (0.2, 0.0)]
    points = {tuple(np.round(TRANSPOSED_IMAGE[lab](*s), 12)) for s in seeds for lab in range(8)}
    return np.array(sorted(points))


def test_permutation_matches_brute_force_on_shuffled_grid():
    k = sibcl_grid(shuffle_seed=0)
    for label, g in enumerate(D4()):
        perm = kpoint_permutation(g, k)
        assert perm.dtype == torch.long and perm.shape == (len(k),)
        assert torch.equal(perm.sort().values, torch.arange(len(k)))  # a bijection
        for i in range(len(k)):
            image = np.array(TRANSPOSED_IMAGE[label](*k[i]))
            diff = k - image
            j = np.flatnonzero(np.abs(diff - np.round(diff)).max(1) < 1e-9)
            assert j.tolist() == [int(perm[i])]


def test_permutation_composition_law():
    # bands_{(g@h)·ε}[i] = bands_{h·ε}[perm_g[i]] = bands_ε[perm_h[perm_g[i]]].
    k = torch.from_numpy(sibcl_grid(shuffle_seed=1))
    table = kpoint_permutation_table(k)
    d4 = D4()
    noncommuting = 0
    for a, b in itertools.product(range(8), range(8)):
        g, h = d4.element(a), d4.element(b)
        composed = table[d4.label(g @ h)]
        assert torch.equal(composed, table[b][table[a]])
        noncommuting += not torch.equal(composed, table[a][table[b]])
    assert noncommuting > 0  # the order of the law is tested, not only its existence


def test_translations_and_scales_do_not_move_kpoints():
    k = sibcl_grid()
    g = Element.translation(3, 1, 32) @ Element.scaling(2.0)
    assert torch.equal(kpoint_permutation(g, k), torch.arange(len(k)))


def test_reciprocal_lattice_vectors_are_folded():
    k = np.array([[0.5, 0.0], [0.0, 0.5], [0.5, 0.5], [0.0, 0.0]])
    # R maps (0.5, 0) to (0, -0.5) = (0, 0.5) - (0, 1).
    perm = kpoint_permutation(Element.rotation(1), k)
    assert perm.tolist() == [1, 0, 2, 3]


def test_open_kpoint_sets_are_rejected():
    k = sibcl_grid()
    subset = k[np.random.default_rng(0).choice(len(k), 50, replace=False)]
    with pytest.raises(ValueError, match="not closed"):
        kpoint_permutation(Element.rotation(1), subset)
    with pytest.raises(ValueError, match="not closed"):
        kpoint_permutation(Element.mirror("x"), k + np.array([0.01, 0.0]))
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        kpoint_permutation(Element.rotation(1), np.zeros((4, 3)))


def test_invariant_targets_are_unchanged():
    y = torch.randn(4, 400)
    g = Element.scaling(3.0) @ Element.rotation(1) @ Element.translation(5, 2, 32)
    for name in ("dos", "dos_eldiff", "gaps"):
        assert torch.equal(transform_target(g, name, y), y)


def test_frequencies_scale_as_inverse_square_root():
    y = torch.rand(4, 10, dtype=torch.float64)
    torch.testing.assert_close(transform_target(Element.scaling(4.0), "frequencies", y), y / 2)
    g = Element.mirror("y") @ Element.translation(1, 1, 8)
    assert torch.equal(transform_target(g, "frequencies", y), y)


def test_bands_are_permuted_and_scaled():
    k = sibcl_grid(shuffle_seed=2)
    y = torch.rand(3, len(k), 10, dtype=torch.float64)
    g = Element.scaling(0.25) @ Element.rotation(1)
    perm = kpoint_permutation(g, k)
    torch.testing.assert_close(transform_target(g, "bands", y, k), 2 * y[:, perm])
    out = transform_target(Element.mirror("x"), "bands", y.numpy(), k)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, y.numpy()[:, kpoint_permutation(Element.mirror("x"), k).numpy()])
    assert torch.equal(transform_target(Element.translation(4, 0, 32), "bands", y), y)


def test_target_errors_name_the_problem():
    y = torch.zeros(2, 625, 10)
    with pytest.raises(ValueError, match="allowed: " + ", ".join(TARGET_NAMES)):
        transform_target(Element(), "efreq", y)
    with pytest.raises(ValueError, match="k-points"):
        transform_target(Element.rotation(1), "bands", y)
    with pytest.raises(ValueError, match="K=625"):
        transform_target(Element.rotation(1), "bands", torch.zeros(2, 624, 10), sibcl_grid())


def test_batched_targets_equal_one_at_a_time():
    axis = np.linspace(-0.4, 0.4, 9)
    k = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)[::-1].copy()
    gen = torch.Generator().manual_seed(0)
    y = torch.rand(12, len(k), 6, dtype=torch.float64, generator=gen)
    d4 = D4()
    labels = d4.sample(12, gen)
    scales = [1.0, 0.5, 2.0, 4.0]
    elements = [Element.scaling(scales[b % 4]) @ d4.element(int(labels[b])) for b in range(12)]
    batch = ElementBatch.from_elements(elements, 8)
    for name in TARGET_NAMES:
        out = transform_target_batch(batch, name, y, k)
        for b in range(12):
            torch.testing.assert_close(out[b], transform_target(elements[b], name, y[b : b + 1], k)[0])
    out = transform_target_labels(d4, labels, "bands", y, k)
    for b in range(12):
        torch.testing.assert_close(out[b], transform_target(d4.element(int(labels[b])), "bands", y[b : b + 1], k)[0])


def tm_bands(eps: np.ndarray, kpoints: np.ndarray, p: int = 2, n_bands: int = 4) -> np.ndarray:
    """Tiny TM plane-wave solver from the pixel Fourier series, pixel (i, j) at r = (i, j)/N."""
    n = eps.shape[0]
    coef = np.fft.fft2(eps) / n**2
    g = np.array([(a, b) for a in range(-p, p + 1) for b in range(-p, p + 1)])
    d = (g[:, None, :] - g[None, :, :]) % n
    toeplitz = coef[d[..., 0], d[..., 1]]
    out = []
    for k in kpoints:
        kinetic = np.diag(((k + g) ** 2).sum(1)).astype(complex)
        out.append(np.sqrt(np.abs(scipy.linalg.eigh(kinetic, toeplitz, eigvals_only=True)[:n_bands])))
    return np.array(out)


def test_transformed_cell_has_permuted_bands_in_a_plane_wave_model():
    rng = np.random.default_rng(0)
    eps = np.where(rng.random((12, 12)) < 0.4, 8.0, 1.0)
    k = small_orbit_set()
    bands = tm_bands(eps, k)
    moved = 0
    for g in D4():
        transformed = g.apply(torch.from_numpy(eps)).numpy()
        perm = kpoint_permutation(g, k).numpy()
        np.testing.assert_allclose(tm_bands(transformed, k), bands[perm], rtol=0, atol=1e-10)
        moved += not np.allclose(bands[perm], bands, atol=1e-6)
    assert moved > 0  # the cell is not symmetric, so the permutation matters


def test_transformed_cell_with_lead_solver():
    physics = pytest.importorskip("photossl.physics")
    solve_bands = getattr(physics, "solve_bands", None)
    if solve_bands is None:
        pytest.skip("photossl.physics.solve_bands is not available")
    rng = np.random.default_rng(1)
    eps = np.where(rng.random((16, 16)) < 0.5, 10.0, 1.0)
    k = small_orbit_set()
    bands = np.asarray(solve_bands(eps, k, polarization="tm", n_bands=4, cutoff=2.0))
    for g in D4():
        transformed = g.apply(torch.from_numpy(eps)).numpy()
        perm = kpoint_permutation(g, k).numpy()
        transformed_bands = np.asarray(solve_bands(transformed, k, polarization="tm", n_bands=4, cutoff=2.0))
        np.testing.assert_allclose(transformed_bands, bands[perm], rtol=0, atol=1e-8)


def test_rot4_labels_give_the_same_band_permutations_as_elements():
    k = sibcl_grid()
    table = kpoint_permutation_table(k)
    for label, g in enumerate(Rot4()):
        assert torch.equal(table[label], kpoint_permutation(g, k))
