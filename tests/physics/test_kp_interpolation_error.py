"""The label recipe's k.p interpolation against exact solves in the same plane-wave basis, far from the anchors.

The recipe ("fast" preset) solves exactly at anchors 0.25 apart and interpolates with reduced bases in between; its
error is largest where k is farthest from every anchor. On the 25x25 label grid these are the points with both
coordinates in {+-0.12, +-0.36} (0.12-0.13 from the nearest anchor along each axis). Measured worst relative error
there over bands 1-10: 0.04 % (air holes, TE), below 0.01 % for TM on every cell kind.
"""

from functools import lru_cache

import numpy as np
import pytest

from photossl.physics import solve_bands
from photossl.physics.reference_cells import CELL_KINDS, reference_cell
from photossl.physics.solver_options import PRESETS

FAR = np.array([[x, y] for x in (-0.36, -0.12, 0.12, 0.36) for y in (-0.36, -0.12, 0.12, 0.36)])
TOLERANCE = 5e-4  # 0.05 %


@lru_cache(maxsize=None)
def exact(kind, polarization, cutoff):
    return solve_bands(reference_cell(kind), FAR, polarization, 10, cutoff=cutoff, anchor_spacing=None,
                       reduced_precision="double")


@pytest.mark.parametrize("polarization", ["tm", "te"])
@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_recipe_interpolation_error_is_bounded(kind, polarization):
    options = PRESETS["fast"]
    interpolated = solve_bands(reference_cell(kind), FAR, polarization, 10, options=options)
    reference = exact(kind, polarization, options.cutoff_for(polarization))
    error = np.abs(interpolated - reference) / reference
    assert error.max() < TOLERANCE, f"{kind} {polarization}: {100 * error.max():.4f} %"
    assert (interpolated >= reference - 1e-12).all()  # Rayleigh-Ritz values are upper bounds


@pytest.mark.parametrize("polarization", ["tm", "te"])
def test_sternheimer_response_beats_plain_response(polarization):
    """The exact first-order eigenvector response (default) against the plain dC/dk V span of the earlier recipe."""
    eps = reference_cell("holes")
    reference = exact("holes", polarization, 6.0)
    errors = {}
    for response in ("sternheimer", "plain"):
        bands = solve_bands(eps, FAR, polarization, 10, options=PRESETS["fast"].replace(anchor_response=response))
        errors[response] = (np.abs(bands - reference) / reference).max()
    assert errors["sternheimer"] < errors["plain"] / 5, errors
