"""Labels for one cell the way datasets need them: bands on a k-grid (symmetry-reduced), DOS, gaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from photossl.physics.dos import SibclDos, sibcl_dos
from photossl.physics.gaps import gap_table
from photossl.physics.kpoints import cell_point_group, reduce_kpoints, sibcl_grid
from photossl.physics.solver import solve_bands_full

# Accuracy options of the default label recipe: |G| <= 6 (113 plane waves), k.p interpolation from anchors 0.25 apart,
# the small reduced problems in single precision (bands agree with double precision to ~1e-6 relative).
DEFAULT_SOLVER_OPTIONS = {
    "cutoff": 6.0,
    "basis_shape": "circle",
    "anchor_spacing": 0.25,
    "anchor_extra_bands": 4,
    "reduced_precision": "single",
}


@dataclass
class CellLabels:
    """Labels of one cell for one polarization; arrays cover the full k-grid."""

    polarization: str
    frequencies: np.ndarray  # (K, n_bands)
    group_velocities: np.ndarray | None  # (K, n_bands, 2)
    dos: SibclDos | None
    gaps: np.ndarray  # (n_bands - 1, 3): lower edge, upper edge, gap-to-midgap ratio
    n_solved: int  # k-points actually solved after symmetry reduction
    extra: dict = field(default_factory=dict)


def label_cell(
    eps: np.ndarray,
    polarization: str = "tm",
    n_bands: int = 10,
    grid_size: int = 25,
    dos: bool = True,
    use_symmetry: bool = True,
    solver_options: dict | None = None,
) -> CellLabels:
    """Bands, group velocities, SIB-CL DOS and gaps of an (N, N) cell on the ``grid_size``^2 SIB-CL grid.

    Symmetry: k-points related by time reversal and by the cell's own point group (detected from the pixel map) are
    solved once.
    """
    options = dict(DEFAULT_SOLVER_OPTIONS if solver_options is None else solver_options)
    kpoints = sibcl_grid(grid_size)
    rotations = cell_point_group(eps) if use_symmetry else (np.eye(2, dtype=np.int64),)
    irreducible = reduce_kpoints(kpoints, rotations, time_reversal=use_symmetry)
    result = solve_bands_full(
        eps, kpoints[irreducible.indices], polarization, n_bands, group_velocities=dos, **options
    )
    freqs_irr = result.frequencies[0]
    dos_label = None
    velocities_full = None
    if dos:
        dos_label = sibcl_dos(
            freqs_irr, result.group_velocities[0], float(np.mean(eps)), 1.0 / grid_size, irreducible.weights
        )
        velocities_full = _expand_velocities(kpoints, irreducible, result.group_velocities[0], rotations)
    freqs_full = freqs_irr[irreducible.inverse]
    return CellLabels(
        polarization, freqs_full, velocities_full, dos_label, gap_table(freqs_irr), len(irreducible.indices)
    )


def _expand_velocities(kpoints, irreducible, velocities_irr, rotations) -> np.ndarray:
    """Velocities on the full grid: v(R k) = R v(k) for the operation R mapping the representative onto each k."""
    representative_k = kpoints[irreducible.indices][irreducible.inverse]
    full = velocities_irr[irreducible.inverse].copy()
    operations = [np.asarray(r, dtype=np.float64) for r in rotations]
    operations = operations + [-r for r in operations]
    done = np.zeros(len(kpoints), dtype=bool)
    for rotation in operations:
        image = representative_k @ rotation.T
        delta = np.mod(image - kpoints + 0.5, 1.0) - 0.5
        match = (~done) & np.all(np.abs(delta) < 1e-9, axis=1)
        full[match] = velocities_irr[irreducible.inverse][match] @ rotation.T
        done |= match
    return full
