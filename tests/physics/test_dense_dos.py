"""The dos_grid option: the DOS from a denser Monkhorst-Pack grid through the label solve's own k.p anchors."""

import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.evaluation import dos_relative_l1
from photossl.physics import monkhorst_pack_grid, reduce_kpoints, solve_bands_full
from photossl.physics.dos import SibclDos, richardson_dos, sibcl_dos
from photossl.physics.labels import label_cell
from photossl.physics.solver_options import SolverOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_dense_dos_matches_exact_solves_on_the_dense_grid(random_cell):
    grid = 30
    labels = label_cell(random_cell, solver_options={"dos_grid": grid})
    kpoints = monkhorst_pack_grid(grid)
    irreducible = reduce_kpoints(kpoints)
    exact = solve_bands_full(random_cell, kpoints[irreducible.indices], "tm", 10, group_velocities=True,
                             anchor_spacing=None)
    reference = sibcl_dos(exact.frequencies[0], exact.group_velocities[0], float(random_cell.mean()), 1 / grid,
                          irreducible.weights)
    assert labels.extra["n_solved_dos"] == len(irreducible.indices)
    assert dos_relative_l1(labels.dos.dos_normalized[None], reference.dos_normalized[None]) < 2e-4


def test_dense_dos_leaves_the_label_arrays_alone(random_cell):
    plain = label_cell(random_cell)
    dense = label_cell(random_cell, solver_options={"dos_grid": 40})
    np.testing.assert_allclose(dense.frequencies, plain.frequencies, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dense.group_velocities, plain.group_velocities, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(dense.gaps, plain.gaps)
    assert dense.n_solved == plain.n_solved
    assert "n_solved_dos" not in plain.extra
    assert not np.allclose(dense.dos.dos_normalized, plain.dos.dos_normalized)


def test_dense_dos_of_the_empty_lattice_is_closer_to_two_pi_omega():
    eps = np.full((16, 16), 3.0)
    window = None
    errors = []
    for grid in (None, 60):
        label = label_cell(eps, n_bands=6, solver_options={"cutoff": 4.0, "dos_grid": grid}).dos
        # 6 bands are complete up to omega * sqrt(eps) = 1 at M-like points; compare inside that range
        window = (label.freq > 0.1) & (label.freq < 0.45)
        errors.append(np.abs(label.eldiff[window]).max())
    assert errors[1] < 0.02 * (2 * np.pi * label.freq[window]).max()
    assert errors[1] < errors[0]


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "50"])
def test_dos_grid_must_be_a_positive_integer(value):
    with pytest.raises(PhotosslError, match="dos_grid"):
        SolverOptions(dos_grid=value)


def test_extrapolated_dos_is_closer_to_a_fine_grid_than_the_dense_grid_alone(random_cell):
    def dos(**changes):
        options = {"cutoff": 3.0, **changes}
        return label_cell(random_cell, n_bands=6, solver_options=options).dos.dos_normalized[None]

    converged = dos(dos_grid=120)
    dense = dos_relative_l1(dos(dos_grid=50), converged)
    extrapolated = dos_relative_l1(dos(dos_grid=50, dos_extrapolate=True), converged)
    assert extrapolated < dense / 2


def test_richardson_dos_is_exact_for_an_error_falling_as_one_over_n_squared():
    freq = np.linspace(0, 1.2, 500)[:400]
    exact = 2 * np.pi * freq + np.sin(7 * freq)
    error = np.cos(3 * freq)

    def label(n):
        values = exact + error / n**2
        return SibclDos(freq, 2 * values, values, values - 2 * np.pi * freq)

    result = richardson_dos(label(50), label(25), 50, 25)
    np.testing.assert_allclose(result.dos_normalized, exact, atol=1e-12)
    np.testing.assert_allclose(result.dos, 2 * exact, atol=1e-12)
    np.testing.assert_allclose(result.eldiff, exact - 2 * np.pi * freq, atol=1e-12)


@pytest.mark.parametrize("options, grid_size", [({"dos_extrapolate": True}, 25),
                                                ({"dos_grid": 50, "dos_extrapolate": True}, 20),
                                                ({"dos_grid": 25, "dos_extrapolate": True}, 25)])
def test_extrapolation_needs_a_dense_grid_and_whole_label_tiles(options, grid_size):
    with pytest.raises(PhotosslError, match="dos_extrapolate|two different grids"):
        label_cell(np.full((8, 8), 2.0), n_bands=4, grid_size=grid_size, solver_options={"cutoff": 2.0, **options})
