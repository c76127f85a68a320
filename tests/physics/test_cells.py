"""Unit-cell generators: exact plane-group invariance, determinism, parameters honoured."""

import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.physics import (
    PLANE_GROUPS,
    apply_operation,
    cell_point_group,
    cylinder_cell,
    fourier_level_set_cell,
    plane_group,
    surrogate_cylinder_cell,
)

EXPECTED_POINT_GROUP_ORDER = {"p1": 1, "p2": 2, "pm": 2, "pg": 2, "cm": 2, "pmm": 4, "pmg": 4, "pgg": 4, "cmm": 4,
                              "p4": 4, "p4m": 8, "p4g": 8}


@pytest.mark.parametrize("group", sorted(PLANE_GROUPS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cells_are_pixel_exactly_invariant(group, seed):
    cell = fourier_level_set_cell(seed=seed, group=group)
    for op in plane_group(group):
        np.testing.assert_array_equal(apply_operation(cell.eps, op), cell.eps)
    assert len(cell_point_group(cell.eps)) >= EXPECTED_POINT_GROUP_ORDER[group]


def test_p1_cells_are_generically_not_symmetric():
    orders = [len(cell_point_group(fourier_level_set_cell(seed=s).eps)) for s in range(5)]
    assert orders.count(1) >= 4


def test_same_seed_same_cell_and_different_seed_differs():
    a = fourier_level_set_cell(seed=42, group="pmg")
    b = fourier_level_set_cell(seed=42, group="pmg")
    c = fourier_level_set_cell(seed=43, group="pmg")
    np.testing.assert_array_equal(a.eps, b.eps)
    assert not np.array_equal(a.eps, c.eps)


def test_two_phases_ranges_and_filling():
    for seed in range(5):
        cell = fourier_level_set_cell(seed=seed, eps_in_range=(10, 12), eps_out_range=(1, 2),
                                      filling_range=(0.3, 0.7))
        assert set(np.unique(cell.eps)) <= {cell.eps_in, cell.eps_out}
        assert 10 <= cell.eps_in <= 12 and 1 <= cell.eps_out <= 2
        assert abs((cell.eps == cell.eps_out).mean() - cell.filling) < 0.08


def test_larger_grids_and_orders():
    cell = fourier_level_set_cell(seed=1, n=48, max_order=2, group="p4")
    assert cell.eps.shape == (48, 48)
    for op in plane_group("p4"):
        np.testing.assert_array_equal(apply_operation(cell.eps, op), cell.eps)


def test_cylinders():
    eps = cylinder_cell(0.25, 9.0, 1.0, n=32)
    assert eps[16, 16] == 9.0 and eps[0, 0] == 1.0
    assert abs((eps == 9.0).mean() - np.pi * 0.25**2) < 0.02
    smooth = cylinder_cell(0.25, 9.0, 1.0, n=32, supersample=8)
    assert abs((smooth - 1).sum() / 8 / 32**2 - np.pi * 0.25**2) < 0.002
    eps, params = surrogate_cylinder_cell(seed=3)
    assert 0 < params["radius"] <= 0.5 and eps.shape == (32, 32)
    assert len(cell_point_group(eps)) == 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"group": "p6"}, "unknown plane group"),
        ({"filling_range": (0.5, 1.5)}, "filling"),
        ({"eps_in_range": (-1, 3)}, "eps_in"),
        ({"max_order": 0}, "order"),
    ],
)
def test_bad_generator_parameters(kwargs, message):
    with pytest.raises(PhotosslError, match=message):
        fourier_level_set_cell(seed=0, **kwargs)


def test_random_pixel_cells_are_binary_and_seeded():
    from photossl.physics import random_pixel_cell

    eps, info = random_pixel_cell(3, n=32, filling=0.25)
    again, _ = random_pixel_cell(3, n=32, filling=0.25)
    np.testing.assert_array_equal(eps, again)
    assert set(np.unique(eps)) == {info["eps_in"], info["eps_out"]}
    assert abs(np.mean(eps == info["eps_out"]) - 0.25) < 0.06
    with pytest.raises(PhotosslError, match="filling"):
        random_pixel_cell(0, filling=1.5)
