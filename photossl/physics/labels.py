"""Labels for one cell the way datasets need them: bands on a k-grid (symmetry-reduced), DOS, gaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from photossl.errors import PhotosslError
from photossl.physics.dos import SibclDos, sibcl_dos
from photossl.physics.gaps import gap_table
from photossl.physics.kpoints import cell_point_group, monkhorst_pack_grid, reduce_kpoints, sibcl_grid
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
# k-point layouts of the n x n label grid: SIB-CL's (margin 0.02, the tile centres only for n = 25) or the centres of
# n x n equal tiles (Monkhorst-Pack), which the GGR tiles of side 1/n cover exactly for any n.
K_GRIDS = ("sibcl", "monkhorst-pack")

# The rough ("cheap") label recipe for multi-fidelity pretraining: |G| <= 2 (13 plane waves), an exact solve at each
# k-point of a 15 x 15 Monkhorst-Pack grid. Its SIB-CL DOS lies on the same 400 scaled frequencies as the default
# recipe's. On 100 bundled cells (one thread) it cost 11x less CPU than the default recipe (19 ms against 206 ms per
# cell) with a DOS error of 3.2 % against it (relative L1, bins 100..399; another cell's exact DOS is 10.4 % away);
# docs/results/multifidelity/README.md lists the settings tried.
ROUGH_GRID_SIZE = 15
ROUGH_SOLVER_OPTIONS = {**DEFAULT_SOLVER_OPTIONS, "cutoff": 2.0, "anchor_spacing": None, "k_grid": "monkhorst-pack"}


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
    solved once. ``solver_options`` are :func:`~photossl.physics.solver.solve_bands_full` keywords, plus ``k_grid``
    (one of :data:`K_GRIDS`, default 'sibcl'): the layout of the k-grid (:func:`label_kpoints`).
    """
    options = dict(DEFAULT_SOLVER_OPTIONS if solver_options is None else solver_options)
    kpoints = label_kpoints(grid_size, options.pop("k_grid", "sibcl"))
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


def label_kpoints(grid_size: int, k_grid: str = "sibcl") -> np.ndarray:
    """(grid_size^2, 2) k-points of a label grid: SIB-CL's grid or the Monkhorst-Pack tile centres (:data:`K_GRIDS`).

    Both are the same points for grid_size 25, the default.
    """
    if k_grid == "sibcl":
        return sibcl_grid(grid_size)
    if k_grid == "monkhorst-pack":
        return monkhorst_pack_grid(grid_size)
    raise PhotosslError(f"k_grid must be one of {', '.join(K_GRIDS)}, got '{k_grid}'")


def rough_label_cell(
    eps: np.ndarray,
    polarization: str = "tm",
    n_bands: int = 10,
    grid_size: int = ROUGH_GRID_SIZE,
    dos: bool = True,
    use_symmetry: bool = True,
    solver_options: dict | None = None,
) -> CellLabels:
    """:func:`label_cell` with the rough recipe (:data:`ROUGH_GRID_SIZE`, :data:`ROUGH_SOLVER_OPTIONS`; the
    ``solver_options`` given are merged over it): cheap labels on the default labels' DOS frequencies."""
    options = {**ROUGH_SOLVER_OPTIONS, **(solver_options or {})}
    return label_cell(eps, polarization, n_bands, grid_size, dos, use_symmetry, options)


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
