"""Labels for one cell the way datasets need them: bands on a k-grid (symmetry-reduced), DOS, gaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from photossl.errors import PhotosslError
from photossl.physics.dos import SibclDos, richardson_dos, sibcl_dos
from photossl.physics.gaps import gap_table
from photossl.physics.kpoints import (
    cell_point_group,
    monkhorst_pack_grid,
    reduce_kpoints,
    sibcl_grid,
)
from photossl.physics.solver import solve_bands_full
from photossl.physics.solver_options import (
    DEFAULT_PRESET,
    K_GRIDS,
    PRESETS,
    SolverOptions,
    option_names,
    solver_options,
)

# The default label recipe is the "fast" preset (photossl.physics.solver_options): |G| <= 6 (113 plane waves), k.p
# interpolation from anchors 0.25 apart with the exact first-order (Sternheimer) response. Dataset configs store these
# keys (the values come from the preset, so the recipe is defined once); labels made before anchor_response existed
# used anchor_response="plain" and reduced_precision="single".
RECIPE_KEYS = ("cutoff", "basis_shape", "anchor_spacing", "anchor_extra_bands", "anchor_response", "reduced_precision")
DEFAULT_SOLVER_OPTIONS = {key: getattr(PRESETS[DEFAULT_PRESET], key) for key in RECIPE_KEYS}
# Keys of a solver-options dict that are run settings of solve_bands_full, not accuracy options.
RUN_KEYS = ("k_chunk", "device", "dtype")

# The rough ("cheap") label recipe for multi-fidelity pretraining: |G| <= 2 (13 plane waves), an exact solve at each
# k-point of a 15 x 15 Monkhorst-Pack grid. Its SIB-CL DOS lies on the same 400 scaled frequencies as the default
# recipe's. On 100 bundled cells (one thread) it cost 11x less CPU than the default recipe (19 ms against 206 ms per
# cell) with a DOS error of 3.2 % against it (relative L1, bins 100..399; another cell's exact DOS is 10.4 % away);
# docs/results/multifidelity/README.md lists the settings tried.
ROUGH_GRID_SIZE = 15
ROUGH_SOLVER_OPTIONS = {**DEFAULT_SOLVER_OPTIONS, "cutoff": 2.0, "anchor_spacing": None, "k_grid": "monkhorst-pack"}

# A dataset's accuracy settings per solver (photossl generate --solver): user options are merged over these and the
# result is stored in the dataset's config. The plane-wave recipe is the default preset's; its fields are the allowed
# keys.
PWE_DEFAULT_OPTIONS = dict(DEFAULT_SOLVER_OPTIONS)
PWE_OPTION_KEYS = (*option_names(), "k_chunk")
# resolution None means one MPB grid point per pixel (pixel-exact ε); k_grid as for the plane-wave solver.
MPB_DEFAULT_OPTIONS = {"resolution": None, "tolerance": 1e-7, "extra_bands": 2}
MPB_OPTION_KEYS = ("resolution", "tolerance", "extra_bands", "block_size", "randomize_fields", "timeout", "k_grid")


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


def _label_grid(eps: np.ndarray, grid_size: int, k_grid: str, use_symmetry: bool):
    """(k-points of the label grid, the cell's point-group rotations, the irreducible k-points): with
    ``use_symmetry``, k-points related by time reversal or by the cell's own point group are solved once."""
    kpoints = label_kpoints(grid_size, k_grid)
    rotations = cell_point_group(eps) if use_symmetry else (np.eye(2, dtype=np.int64),)
    return kpoints, rotations, reduce_kpoints(kpoints, rotations, time_reversal=use_symmetry)


def label_cell(
    eps: np.ndarray,
    polarization: str = "tm",
    n_bands: int = 10,
    grid_size: int = 25,
    dos: bool = True,
    use_symmetry: bool = True,
    solver_options: SolverOptions | str | dict | None = None,
) -> CellLabels:
    """Bands, group velocities, SIB-CL DOS and gaps of an (N, N) cell on the ``grid_size``^2 SIB-CL grid.

    Symmetry: k-points related by time reversal and by the cell's own point group (detected from the pixel map) are
    solved once. ``solver_options``: a :class:`~photossl.physics.solver_options.SolverOptions`, a preset name, or a
    dict of its fields (merged over the default "fast" preset) plus the run settings ``k_chunk``, ``device``,
    ``dtype``; its ``k_grid`` (one of :data:`K_GRIDS`, default 'sibcl') is the layout of the k-grid
    (:func:`label_kpoints`), its ``dos_grid`` (default None: the label grid) the size of the Monkhorst-Pack grid the
    DOS is made on (``extra["n_solved_dos"]``: its k-points solved), and ``dos_extrapolate`` combines that DOS with
    the label grid's (:func:`~photossl.physics.dos.richardson_dos`).
    """
    options, run = split_solver_options(solver_options)
    kpoints, rotations, irreducible = _label_grid(eps, grid_size, options.k_grid, use_symmetry)
    solved = kpoints[irreducible.indices]
    dense = dos and options.dos_grid is not None
    if dense and options.dos_extrapolate and not np.allclose(kpoints, monkhorst_pack_grid(grid_size)):
        raise PhotosslError(f"dos_extrapolate needs a label grid of whole tiles (k_grid 'monkhorst-pack', or "
                            f"'sibcl' at "
                            f"25), got '{options.k_grid}' at {grid_size}")
    if dense:  # one solve for both grids, so the DOS points reuse the label grid's k.p anchors
        dos_kpoints = monkhorst_pack_grid(options.dos_grid)
        dos_irreducible = reduce_kpoints(dos_kpoints, rotations, time_reversal=use_symmetry)
        solved = np.concatenate([solved, dos_kpoints[dos_irreducible.indices]])
    result = solve_bands_full(eps, solved, polarization, n_bands, group_velocities=dos, options=options, **run)
    n_label = len(irreducible.indices)
    freqs_irr = result.frequencies[0, :n_label]
    dos_label = None
    velocities_full = None
    extra = {}
    if dos:
        velocities_irr = result.group_velocities[0, :n_label]
        if not dense or options.dos_extrapolate:
            dos_label = sibcl_dos(freqs_irr, velocities_irr, float(np.mean(eps)), 1.0 / grid_size, irreducible.weights)
        if dense:
            dense_dos = sibcl_dos(result.frequencies[0, n_label:], result.group_velocities[0, n_label:],
                                  float(np.mean(eps)), 1.0 / options.dos_grid, dos_irreducible.weights)
            if options.dos_extrapolate:
                dense_dos = richardson_dos(dense_dos, dos_label, options.dos_grid, grid_size)
            dos_label = dense_dos
            extra["n_solved_dos"] = len(dos_irreducible.indices)
        velocities_full = _expand_velocities(kpoints, irreducible, velocities_irr, rotations)
    freqs_full = freqs_irr[irreducible.inverse]
    return CellLabels(polarization, freqs_full, velocities_full, dos_label, gap_table(freqs_irr), n_label, extra)


def label_cell_mpb(
    eps: np.ndarray,
    polarization: str = "tm",
    n_bands: int = 10,
    grid_size: int = 25,
    dos: bool = True,
    use_symmetry: bool = True,
    mpb_options: dict | None = None,
) -> CellLabels:
    """:func:`label_cell`'s recipe with MPB as the eigensolver: bands on the same k-grid (symmetry-reduced the same
    way), group velocities from MPB, the DOS by GGR. ``mpb_options``: keys of :data:`MPB_OPTION_KEYS` (None values
    are left to :func:`~photossl.physics.mpb.run_mpb`'s defaults)."""
    from photossl.physics.mpb import run_mpb

    options = {k: v for k, v in (mpb_options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(MPB_OPTION_KEYS))
    if unknown:
        raise PhotosslError(f"unknown mpb solver option '{unknown[0]}' (allowed: {', '.join(MPB_OPTION_KEYS)})")
    kpoints, rotations, irreducible = _label_grid(eps, grid_size, options.pop("k_grid", SolverOptions().k_grid),
                                                  use_symmetry)
    result = run_mpb(eps, kpoints[irreducible.indices], polarization, n_bands, group_velocities=dos, **options)
    freqs, velocities = result if dos else (result, None)
    dos_label = velocities_full = None
    if dos:
        dos_label = sibcl_dos(freqs, velocities, float(np.mean(eps)), 1.0 / grid_size, irreducible.weights)
        velocities_full = _expand_velocities(kpoints, irreducible, velocities, rotations)
    return CellLabels(polarization, freqs[irreducible.inverse], velocities_full, dos_label, gap_table(freqs),
                      len(irreducible.indices))


def split_solver_options(value: SolverOptions | str | dict | None) -> tuple[SolverOptions, dict]:
    """(SolverOptions, run settings) from what :func:`label_cell` accepts; unknown keys raise PhotosslError."""
    if not isinstance(value, dict):
        return solver_options(value), {}
    unknown = sorted(set(value) - set(option_names()) - set(RUN_KEYS))
    if unknown:
        raise PhotosslError(f"unknown solver option '{unknown[0]}' (allowed: {', '.join(option_names() + RUN_KEYS)})")
    run = {key: value[key] for key in RUN_KEYS if value.get(key) is not None}
    return solver_options({k: v for k, v in value.items() if k not in RUN_KEYS}), run


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
