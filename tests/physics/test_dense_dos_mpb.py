"""The dense-grid DOS option against MPB's DOS on the same grid (a real MPB run, no mocks).

On the same k-points and post-processing the two DOS differ only by the band error; the 25x25 label DOS differs by
the k-grid too. benchmarks/dos_vs_mpb.py measures the labels against a converged dense MPB DOS.
"""

import numpy as np
import pytest

from photossl.evaluation import dos_relative_l1
from photossl.physics import cell_point_group, monkhorst_pack_grid, reduce_kpoints
from photossl.physics.dos import sibcl_dos
from photossl.physics.labels import label_cell
from photossl.physics.mpb import mpb_available, run_mpb
from photossl.physics.reference_cells import reference_cell

pytestmark = [
    pytest.mark.mpb,
    pytest.mark.skipif(not mpb_available(), reason="Debian's mpb is not installed (apt install mpb)"),
    pytest.mark.usefixtures("one_torch_thread"),
]


def test_dense_dos_agrees_with_mpb_on_the_same_grid():
    """Measured on this level set (MPB res 32, 12x12 grid, 72 irreducible k-points): 0.10 % with dos_grid=12,
    1.2 % for the 25x25 label."""
    grid = 12
    eps = reference_cell("levelset-p1", 0)
    kpoints = monkhorst_pack_grid(grid)
    irreducible = reduce_kpoints(kpoints, cell_point_group(eps))
    freqs, velocities = run_mpb(eps, kpoints[irreducible.indices], "tm", 10, resolution=32, group_velocities=True)
    reference = sibcl_dos(freqs, velocities, float(eps.mean()), 1 / grid, irreducible.weights).dos_normalized[None]
    dense = label_cell(eps, solver_options={"dos_grid": grid}).dos.dos_normalized[None]
    label = label_cell(eps).dos.dos_normalized[None]
    assert dos_relative_l1(dense, reference) < 0.002
    assert dos_relative_l1(label, reference) > 0.005
    assert np.isfinite(reference).all()
