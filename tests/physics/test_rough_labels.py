"""The rough label recipe (multi-fidelity pretraining): the same DOS definition as the default recipe, exact for the
empty lattice, on a Monkhorst-Pack k-grid that its GGR tiles cover."""

import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.evaluation.metrics import dos_relative_l1
from photossl.physics.dos import empty_lattice_dos
from photossl.physics.kpoints import monkhorst_pack_grid, sibcl_grid
from photossl.physics.labels import label_cell, label_kpoints, rough_label_cell


def test_label_kpoints_layouts():
    assert np.array_equal(label_kpoints(9), sibcl_grid(9))
    assert np.array_equal(label_kpoints(9, "monkhorst-pack"), monkhorst_pack_grid(9))
    assert np.allclose(label_kpoints(25, "monkhorst-pack"), label_kpoints(25, "sibcl"))  # the default grid: both
    with pytest.raises(PhotosslError, match="k_grid"):
        label_kpoints(9, "gamma-centred")


@pytest.mark.parametrize("eps_value", [1.0, 4.0])
def test_rough_dos_of_a_homogeneous_cell_is_the_empty_lattice_dos(eps_value, one_torch_thread):
    """On the scaled frequency axis a homogeneous cell's DOS / sqrt(eps) is 2 pi omega: the rough recipe gets it to
    0.2 %, as the default recipe does; SIB-CL's k-grid margin at 15 points (not the tiles' centres) does not."""
    eps = np.full((8, 8), eps_value)
    rough = rough_label_cell(eps).dos
    exact = label_cell(eps).dos  # the default recipe
    empty = empty_lattice_dos(rough.freq)
    assert rough.freq.shape == (400,) and np.allclose(rough.freq, np.linspace(0, 1.2, 500)[:400])
    assert dos_relative_l1(rough.dos_normalized, empty) < 2e-3
    assert dos_relative_l1(rough.eldiff + empty, exact.eldiff + empty) < 2e-3
    misplaced = rough_label_cell(eps, solver_options={"k_grid": "sibcl"}).dos
    assert dos_relative_l1(misplaced.dos_normalized, empty) > 0.02


def test_rough_recipe_options_merge_over_it(random_cell, one_torch_thread):
    labels = rough_label_cell(random_cell, n_bands=6, grid_size=5, solver_options={"cutoff": 3.0})
    assert labels.frequencies.shape == (25, 6) and labels.dos.eldiff.shape == (400,)
