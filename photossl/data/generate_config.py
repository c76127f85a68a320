"""The recipe of a generated dataset: :class:`GenerateConfig` (everything that determines a dataset's content) and
the named presets it starts from.

This module imports nothing heavy, so the command line can read the fields' defaults and choices without loading the
solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from photossl.config import build_config, config_to_dict
from photossl.errors import PhotosslError

__all__ = ["CELL_KINDS", "POLARIZATIONS", "PRESETS", "SOLVERS", "TARGETS", "GenerateConfig", "preset_config"]

TARGETS = ("dos", "bands", "gaps", "group_velocity")
POLARIZATIONS = ("tm", "te")
SOLVERS = ("pwe", "mpb")
CELL_KINDS = ("levelset", "cylinder")

# Each preset is a partial config; explicit options override it.
PRESETS: dict[str, dict] = {
    # SIB-CL (Loh et al. 2022): p1 Fourier level sets of order 1, eps in [1, 20], TM, 10 bands, 25 x 25 k-grid.
    "sibcl-p1": {"cell": "levelset", "group": "p1"},
    # E-SSL's "gpm" set: the same recipe with one mirror line (plane group pm).
    "essl-pm": {"cell": "levelset", "group": "pm"},
    # Fully symmetric cells (plane group p4m: 4-fold rotations and mirrors).
    "p4m": {"cell": "levelset", "group": "p4m"},
    # SIB-CL's surrogate set: one centred cylinder, radius in (0, 0.5].
    "cylinder-surrogate": {"cell": "cylinder", "radius_range": (0.0, 0.5)},
}


@dataclass
class GenerateConfig:
    """Everything that determines a dataset's content (run options such as workers and shards are not here).

    ``group``, ``max_order`` and ``filling_range`` apply to level-set cells, ``radius_range`` to cylinder cells.
    ``solver_options`` are merged over the solver's defaults, so the stored config lists every accuracy setting.
    """

    preset: str = "sibcl-p1"
    n_cells: int = 1024
    seed: int = 0
    chunk_size: int = 64
    cell: str = field(default="levelset", metadata={"choices": CELL_KINDS})
    group: str = "p1"
    size: int = 32
    max_order: int = 1
    filling_range: tuple[float, float] = (0.01, 0.99)
    eps_in_range: tuple[float, float] = (1.0, 20.0)
    eps_out_range: tuple[float, float] = (1.0, 20.0)
    radius_range: tuple[float, float] = (0.0, 0.5)
    polarizations: tuple[str, ...] = field(default=("tm",), metadata={"choices": POLARIZATIONS})
    grid_size: int = 25
    n_bands: int = 10
    targets: tuple[str, ...] = field(default=("dos", "bands", "gaps"), metadata={"choices": TARGETS})
    use_symmetry: bool = True
    solver: str = field(default="pwe", metadata={"choices": SOLVERS})
    solver_options: dict | None = None

    def __post_init__(self) -> None:
        # the solvers' accuracy settings live with the labelling code (imported here: reading the fields' defaults
        # must not load the solver)
        from photossl.physics.labels import (
            MPB_DEFAULT_OPTIONS,
            MPB_OPTION_KEYS,
            PWE_DEFAULT_OPTIONS,
            PWE_OPTION_KEYS,
        )

        defaults, allowed = (
            (PWE_DEFAULT_OPTIONS, PWE_OPTION_KEYS) if self.solver == "pwe" else (MPB_DEFAULT_OPTIONS, MPB_OPTION_KEYS)
        )
        given = dict(self.solver_options or {})
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise PhotosslError(
                f"unknown {self.solver} solver option '{unknown[0]}' (allowed: {', '.join(allowed)})"
            )
        for key, value in given.items():  # 3 and 3.0 must store the same config (and the same chunk bytes)
            if isinstance(defaults.get(key), float) and isinstance(value, int) and not isinstance(value, bool):
                given[key] = float(value)
        self.solver_options = {**defaults, **given}
        self.polarizations = tuple(self.polarizations)
        self.targets = tuple(self.targets)
        self.filling_range = tuple(self.filling_range)
        self.eps_in_range = tuple(self.eps_in_range)
        self.eps_out_range = tuple(self.eps_out_range)
        self.radius_range = tuple(self.radius_range)

    def validate(self) -> None:
        from photossl.physics.cells import validate_eps_range
        from photossl.physics.plane_groups import plane_group

        for name in ("n_cells", "chunk_size", "size", "max_order", "grid_size", "n_bands"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PhotosslError(f"{name} must be a positive integer, got {value!r}")
        if self.size < 2:
            raise PhotosslError(f"size (pixels per side) must be >= 2, got {self.size}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise PhotosslError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("filling_range", "eps_in_range", "eps_out_range", "radius_range"):
            if len(getattr(self, name)) != 2:
                raise PhotosslError(f"{name} must be two numbers (low, high), got {getattr(self, name)!r}")
        low, high = self.filling_range
        if not 0 <= low <= high <= 1:
            raise PhotosslError(f"filling_range must satisfy 0 <= low <= high <= 1, got {self.filling_range}")
        low, high = self.radius_range
        if not 0 <= low <= high <= 0.5:
            raise PhotosslError(f"radius_range must satisfy 0 <= low <= high <= 0.5, got {self.radius_range}")
        validate_eps_range("eps_in_range", self.eps_in_range)
        validate_eps_range("eps_out_range", self.eps_out_range)
        plane_group(self.group)
        if len(set(self.polarizations)) != len(self.polarizations):
            raise PhotosslError(f"polarizations repeat: {list(self.polarizations)}")
        if self.targets and not self.polarizations:
            raise PhotosslError("labels need at least one polarization")
        if len(set(self.targets)) != len(self.targets):
            raise PhotosslError(f"targets repeat: {list(self.targets)}")
        if self.preset not in PRESETS:
            raise PhotosslError(f"unknown preset '{self.preset}' (choose from {', '.join(PRESETS)})")
        from photossl.physics.labels import K_GRIDS

        if self.solver_options.get("k_grid", "sibcl") not in K_GRIDS:
            raise PhotosslError(f"solver option k_grid must be one of {', '.join(K_GRIDS)}, "
                                f"got {self.solver_options['k_grid']!r}")

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @property
    def labelled(self) -> bool:
        return bool(self.targets)


def preset_config(preset: str = "sibcl-p1", **overrides) -> GenerateConfig:
    """The config of ``preset`` with ``overrides`` (config keys) applied; unknown keys raise PhotosslError."""
    if preset not in PRESETS:
        raise PhotosslError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    values = {**PRESETS[preset], **overrides, "preset": preset}
    return build_config(GenerateConfig, values)
