"""The solver's accuracy contract: one SolverOptions read everywhere, presets ordered by accuracy, the default call
is the label recipe."""

import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.physics import solve_bands, solve_bands_full
from photossl.physics.labels import DEFAULT_SOLVER_OPTIONS, label_cell
from photossl.physics.reference_cells import reference_cell
from photossl.physics.solver_options import PRESETS, SolverOptions, solver_options

ORDER = ("fast", "standard", "high")
FAR = np.array([[0.12, 0.36], [-0.36, 0.12]])


def test_presets_are_ordered_by_basis_size():
    assert tuple(PRESETS) == ORDER
    for polarization in ("tm", "te"):
        cutoffs = [PRESETS[name].cutoff_for(polarization) for name in ORDER]
        assert cutoffs == sorted(cutoffs) and cutoffs[0] < cutoffs[1] < cutoffs[2]


def test_standard_beats_fast_on_te():
    """TE converges slowest: against an exact solve with |G| <= 18 (1009 plane waves) on air holes, far from the
    anchors."""
    eps = reference_cell("holes", n=32)
    converged = solve_bands(eps, FAR[:1], "te", 10, cutoff=18.0, anchor_spacing=None)
    fast, standard = (np.abs(solve_bands(eps, FAR[:1], "te", 10, options=name) / converged - 1).max()
                      for name in ("fast", "standard"))
    assert fast > 2 * standard, (fast, standard)


@pytest.mark.slow
@pytest.mark.parametrize("polarization", ["tm", "te"])
def test_presets_are_ordered_by_accuracy(polarization):
    """Against an exact solve with a larger basis than any preset (|G| <= 22, 1517 plane waves) on air holes (a few
    minutes: the high preset's and the reference's bases are large)."""
    eps = reference_cell("holes", n=32)
    converged = solve_bands(eps, FAR, polarization, 10, cutoff=22.0, anchor_spacing=None)
    errors = [np.abs(solve_bands(eps, FAR, polarization, 10, options=name) / converged - 1).max() for name in ORDER]
    assert errors[0] > errors[1] > errors[2], errors


def test_default_call_is_the_label_recipe(random_cell):
    kpoints = np.array([[0.12, 0.36], [0.5, 0.5], [-0.2, 0.04]])
    default = solve_bands(random_cell, kpoints, "te", 8)
    np.testing.assert_array_equal(default, solve_bands(random_cell, kpoints, "te", 8, options="fast"))
    np.testing.assert_array_equal(default, solve_bands(random_cell, kpoints, "te", 8, **DEFAULT_SOLVER_OPTIONS))
    assert solver_options() == PRESETS["fast"] == SolverOptions()
    assert {key: getattr(SolverOptions(), key) for key in DEFAULT_SOLVER_OPTIONS} == DEFAULT_SOLVER_OPTIONS


def test_label_cell_reads_the_same_options(random_cell):
    labels = label_cell(random_cell, "tm", 6, grid_size=5, dos=False)
    from photossl.physics import sibcl_grid

    # equal to the single precision of the reduced problems (the symmetry-reduced k-set builds its bases apart)
    np.testing.assert_allclose(labels.frequencies, solve_bands(random_cell, sibcl_grid(5), "tm", 6), rtol=1e-5)
    merged = label_cell(random_cell, "tm", 6, grid_size=5, dos=False, solver_options={"cutoff": 3.0})
    np.testing.assert_allclose(merged.frequencies,
                               solve_bands(random_cell, sibcl_grid(5), "tm", 6, options={"cutoff": 3.0}), rtol=1e-5)
    assert not np.allclose(merged.frequencies, labels.frequencies, rtol=1e-3)


def test_keywords_override_options_and_cutoff_applies_to_te(random_cell):
    kpoints = np.array([[0.1, 0.2]])
    explicit = solve_bands_full(random_cell, kpoints, "te", 4, 3.0, options="standard").basis
    assert explicit.size == solve_bands_full(random_cell, kpoints, "te", 4, options={"cutoff": 3.0}).basis.size == 29
    assert solver_options("standard", cutoff=3.0).cutoff_for("te") == 16.0  # options alone keep te_cutoff
    assert solver_options("standard").cutoff_for("tm") == 14.0


def test_bad_options_name_the_problem():
    with pytest.raises(PhotosslError, match="unknown solver preset 'medium'"):
        solver_options("medium")
    with pytest.raises(PhotosslError, match="unknown solver option 'cutof'"):
        solver_options({"cutof": 3})
    with pytest.raises(PhotosslError, match="te_rule"):
        SolverOptions(te_rule="laurent")
    with pytest.raises(PhotosslError, match="anchor_spacing"):
        SolverOptions(anchor_spacing=0.0)
    with pytest.raises(PhotosslError, match="unknown solver option 'resolution'"):
        label_cell(np.ones((8, 8)), solver_options={"resolution": 32})
