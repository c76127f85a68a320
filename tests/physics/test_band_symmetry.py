"""Bands and DOS of transformed cells: rotations, mirrors and periodic shifts act on k as the physics says."""

import numpy as np
import pytest

from photossl.physics import apply_operation, sibcl_grid, solve_bands
from photossl.physics.labels import label_cell
from photossl.physics.plane_groups import D4_ROTATIONS, SpaceOperation

KPOINTS = np.array([[0.13, 0.27], [0.31, -0.07], [0.5, 0.25], [-0.2, 0.45]])


@pytest.mark.parametrize("index", range(8))
@pytest.mark.parametrize("polarization", ["tm", "te"])
def test_point_operation_maps_k(random_cell, index, polarization):
    """If eps'(R r) = eps(r), then omega'(R k) = omega(k)."""
    rotation = D4_ROTATIONS[index]
    op = SpaceOperation(tuple(map(tuple, rotation.tolist())))
    transformed = apply_operation(random_cell, op)
    original = solve_bands(random_cell, KPOINTS, polarization, 8, cutoff=4, anchor_spacing=None)
    moved = solve_bands(transformed, KPOINTS @ rotation.T, polarization, 8, cutoff=4, anchor_spacing=None)
    np.testing.assert_allclose(moved, original, rtol=1e-10)


@pytest.mark.parametrize("shift", [(1, 0), (3, 7), (8, 8)])
def test_periodic_shift_leaves_bands_unchanged(random_cell, shift):
    rolled = np.roll(random_cell, shift, axis=(0, 1))
    np.testing.assert_allclose(
        solve_bands(rolled, KPOINTS, "te", 8, cutoff=4, anchor_spacing=None),
        solve_bands(random_cell, KPOINTS, "te", 8, cutoff=4, anchor_spacing=None),
        rtol=1e-10,
    )


def test_non_symmetric_operation_changes_bands(random_cell):
    """Guards the test above: at a k not mapped to itself, a rotated p1 cell has different bands."""
    rotated = np.rot90(random_cell)
    assert not np.allclose(solve_bands(rotated, KPOINTS, "tm", 6, cutoff=4, anchor_spacing=None),
                           solve_bands(random_cell, KPOINTS, "tm", 6, cutoff=4, anchor_spacing=None), rtol=1e-6)


def test_dos_invariant_under_transformations(random_cell):
    options = {"cutoff": 3.0, "anchor_spacing": None}
    reference = label_cell(random_cell, grid_size=10, solver_options=options).dos.eldiff
    variants = [np.rot90(random_cell), random_cell[::-1], random_cell.T, np.roll(random_cell, (5, 2), axis=(0, 1))]
    for variant in variants:
        dos = label_cell(np.ascontiguousarray(variant), grid_size=10, solver_options=options).dos.eldiff
        np.testing.assert_allclose(dos, reference, atol=1e-6)


def test_symmetry_reduced_labels_equal_full_grid():
    from photossl.physics import fourier_level_set_cell

    cell = fourier_level_set_cell(seed=5, n=16, group="p4m").eps
    options = {"cutoff": 3.0, "anchor_spacing": None}
    reduced = label_cell(cell, grid_size=9, solver_options=options)
    full = label_cell(cell, grid_size=9, solver_options=options, use_symmetry=False)
    assert reduced.n_solved < full.n_solved / 4
    np.testing.assert_allclose(reduced.frequencies, full.frequencies, rtol=1e-10)
    np.testing.assert_allclose(reduced.group_velocities, full.group_velocities, atol=1e-8)
    np.testing.assert_allclose(reduced.dos.dos, full.dos.dos, atol=1e-8)
    np.testing.assert_allclose(
        solve_bands(cell, sibcl_grid(9), "tm", 10, **options), full.frequencies, rtol=1e-12
    )
