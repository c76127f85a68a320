import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.physics import cell_point_group, gxmg_path, monkhorst_pack_grid, reduce_kpoints, sibcl_grid
from photossl.physics.plane_groups import D4_ROTATIONS


def test_sibcl_grid():
    grid = sibcl_grid()
    assert grid.shape == (625, 2)
    np.testing.assert_allclose(grid[0], [-0.48, -0.48])
    np.testing.assert_allclose(grid[-1], [0.48, 0.48])
    np.testing.assert_allclose(monkhorst_pack_grid(25), grid, atol=1e-15)


def test_reduction_counts_and_weights():
    grid = sibcl_grid()
    time_reversal = reduce_kpoints(grid)
    assert len(time_reversal.indices) == 313 and time_reversal.weights.sum() == 625
    full_d4 = reduce_kpoints(grid, D4_ROTATIONS)
    assert len(full_d4.indices) == 91  # 13 * 14 / 2 points of the irreducible triangle
    np.testing.assert_array_equal(full_d4.indices[full_d4.inverse][full_d4.indices], full_d4.indices)
    none = reduce_kpoints(grid, time_reversal=False)
    assert len(none.indices) == 625


def test_reduction_maps_each_k_to_a_symmetry_image():
    grid = sibcl_grid(8)
    reduced = reduce_kpoints(grid, D4_ROTATIONS)
    representatives = grid[reduced.indices][reduced.inverse]
    images = [representatives @ (s * r).T for r in D4_ROTATIONS for s in (1, -1)]
    for k, row in zip(grid, np.stack(images, axis=1)):
        assert np.any(np.all(np.abs(np.mod(row - k + 0.5, 1) - 0.5) < 1e-9, axis=1))


def test_path():
    path = gxmg_path(4)
    assert len(path.kpoints) == 13
    np.testing.assert_allclose(path.kpoints[[0, 4, 8, 12]], [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0]])
    assert path.tick_labels == ("Γ", "X", "M", "Γ")
    with pytest.raises(PhotosslError):
        gxmg_path(4, "GQ")


@pytest.mark.parametrize("group, vertices", [("p4m", "GXMG"), ("p4", "GXMG"), ("p4g", "GXMG"), ("p1", "GXMGYM"),
                                             ("pmm", "GXMGYM"), ("cmm", "GXMGYM")])
def test_the_path_runs_along_y_too_unless_the_cell_has_a_4_fold_axis(group, vertices):
    from photossl.physics import fourier_level_set_cell, irreducible_path_vertices

    cell = fourier_level_set_cell(seed=1, n=16, group=group)
    assert irreducible_path_vertices(cell_point_group(cell.eps)) == vertices
    path = gxmg_path(2, vertices)
    assert path.tick_labels[-2:] == (("M", "Γ") if vertices == "GXMG" else ("Y", "M"))
