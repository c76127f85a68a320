"""Physics: unit cells, plane groups, k-points, the plane-wave band solver, DOS and band gaps."""

from photossl.physics.cells import (
    LevelSetCell,
    cylinder_cell,
    fourier_level_set_cell,
    holes_cell,
    random_pixel_cell,
    rods_cell,
    surrogate_cylinder_cell,
    validate_eps,
)
from photossl.physics.kpoints import (
    IrreducibleKPoints,
    KPath,
    cell_point_group,
    gxmg_path,
    irreducible_path_vertices,
    monkhorst_pack_grid,
    reduce_kpoints,
    sibcl_grid,
)
from photossl.physics.plane_groups import PLANE_GROUPS, apply_operation, plane_group, point_group, symmetrize
from photossl.physics.solver import BandResult, PlaneWaveBasis, plane_wave_basis, solve_bands, solve_bands_full
from photossl.physics.solver_options import PRESETS as SOLVER_PRESETS
from photossl.physics.solver_options import SolverOptions

__all__ = [
    "validate_eps",
    "BandResult",
    "IrreducibleKPoints",
    "KPath",
    "LevelSetCell",
    "PLANE_GROUPS",
    "SOLVER_PRESETS",
    "PlaneWaveBasis",
    "SolverOptions",
    "apply_operation",
    "cell_point_group",
    "cylinder_cell",
    "fourier_level_set_cell",
    "gxmg_path",
    "irreducible_path_vertices",
    "holes_cell",
    "monkhorst_pack_grid",
    "plane_group",
    "plane_wave_basis",
    "point_group",
    "random_pixel_cell",
    "reduce_kpoints",
    "rods_cell",
    "sibcl_grid",
    "solve_bands",
    "solve_bands_full",
    "surrogate_cylinder_cell",
    "symmetrize",
]
