"""The band solver's accuracy settings in one place: :class:`SolverOptions` and the named presets.

Every caller (``solve_bands``, dataset labels, ``photossl generate``, ``photossl bands``, and the MPB labelling branch
for its k-grid) reads its defaults from here, so a change of recipe is one edit. Presets are ordered by accuracy:
``fast`` (the dataset recipe, the default) < ``standard`` (at least as accurate as MPB at resolution 32 on the same
pixel map) < ``high``. Measured errors and costs of each preset are in the README ("Accuracy presets") and come from
``benchmarks/solver_vs_mpb.py``.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

from photossl.errors import PhotosslError

BASIS_SHAPES = ("circle", "square")
TE_RULES = ("li", "inverse", "ho")
PRECISIONS = ("single", "double")
RESPONSES = ("sternheimer", "plain")
# k-point layouts of the n x n label grid: SIB-CL's (margin 0.02, the tile centres only for n = 25) or the centres of
# n x n equal tiles (Monkhorst-Pack), which the GGR tiles of side 1/n cover exactly for any n.
K_GRIDS = ("sibcl", "monkhorst-pack")


@dataclass(frozen=True)
class SolverOptions:
    """Accuracy settings of the plane-wave solver (and the label k-grid).

    Attributes:
        cutoff: plane waves with |G| <= cutoff (units of 2 pi / a) in the exact solves (6: 113 plane waves).
        te_cutoff: the cutoff for TE, which converges more slowly than TM; None: ``cutoff``.
        basis_shape: "circle" (|G| <= cutoff) or "square" (max(|G_x|, |G_y|) <= cutoff).
        te_rule: TE Fourier factorisation: "li" (Li's rules along the pixel edges), "inverse" ([eps]^-1) or "ho"
            ([1/eps]).
        anchor_spacing: None solves exactly at every k; a float interpolates between anchor k-points on a grid of
            that spacing with k.p reduced bases (exact at the anchors).
        anchor_extra_bands: anchor eigenvectors kept beyond n_bands in each reduced basis.
        anchor_response_bands: how many anchor eigenvectors get first-order response vectors (None: all).
        anchor_response: "sternheimer" (the exact first-order eigenvector derivatives: fourth-order accurate bands
            between anchors) or "plain" (dC/dk V, the recipe before the "sternheimer" default; second order).
        reduced_precision: "single" runs the anchor eigenvectors and the reduced problems in complex64: about 1.4x
            cheaper labels, bands agree with "double" to ~1e-6 relative, but symmetry-related cells and k-points
            then agree only to that level.
        k_grid: layout of the label k-grid ("sibcl" or "monkhorst-pack"; read by the label functions only).
        dos_grid: None makes the DOS from the label grid's bands; n makes it by GGR on the n x n Monkhorst-Pack grid
            instead, solved with the label grid in one call (the same k.p anchors, so each extra k-point costs one
            small reduced eigenproblem); the label arrays stay on the label grid (read by the label functions only).
        dos_extrapolate: with ``dos_grid``, Richardson-extrapolate the DOS of the two grids in the tile size: GGR's
            error falls as 1/n^2, so (N^2 D_N - n^2 D_n) / (N^2 - n^2) cancels its leading term (N = dos_grid, n =
            the label grid, whose tiles must cover the zone: Monkhorst-Pack, or the SIB-CL grid at 25).
    """

    cutoff: float = 6.0
    te_cutoff: float | None = None
    basis_shape: str = "circle"
    te_rule: str = "li"
    anchor_spacing: float | None = 0.25
    anchor_extra_bands: int = 4
    anchor_response_bands: int | None = None
    anchor_response: str = "sternheimer"
    reduced_precision: str = "double"
    k_grid: str = "sibcl"
    dos_grid: int | None = None
    dos_extrapolate: bool = False

    def __post_init__(self) -> None:
        for name in ("cutoff", "te_cutoff"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise PhotosslError(f"solver option {name} must be >= 0, got {value}")
        choices = {"basis_shape": BASIS_SHAPES, "te_rule": TE_RULES, "reduced_precision": PRECISIONS,
                   "anchor_response": RESPONSES, "k_grid": K_GRIDS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise PhotosslError(f"solver option {name} must be one of {', '.join(allowed)}, got "
                                    f"{getattr(self, name)!r}")
        if self.anchor_spacing is not None and not self.anchor_spacing > 0:
            raise PhotosslError(f"solver option anchor_spacing must be > 0 or None, got {self.anchor_spacing}")
        if self.anchor_extra_bands < 0:
            raise PhotosslError(f"solver option anchor_extra_bands must be >= 0, got {self.anchor_extra_bands}")
        if self.anchor_response_bands is not None and self.anchor_response_bands < 0:
            raise PhotosslError(f"solver option anchor_response_bands must be >= 0, got {self.anchor_response_bands}")
        grid = self.dos_grid
        if grid is not None and (isinstance(grid, bool) or not isinstance(grid, numbers.Integral) or grid < 1):
            raise PhotosslError(f"solver option dos_grid must be a positive integer or None, got {self.dos_grid!r}")
        if self.dos_extrapolate and grid is None:
            raise PhotosslError("solver option dos_extrapolate needs a dos_grid to extrapolate from")

    def cutoff_for(self, polarization: str) -> float:
        """The plane-wave cutoff of ``polarization`` ("tm" or "te")."""
        return self.te_cutoff if polarization == "te" and self.te_cutoff is not None else self.cutoff

    def replace(self, **changes) -> SolverOptions:
        """A copy with ``changes``; an unknown name raises PhotosslError naming it."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise PhotosslError(f"unknown solver option '{unknown[0]}' (allowed: {', '.join(option_names())})")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def option_names() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(SolverOptions))


# The dataset recipe: |G| <= 6 (113 plane waves), k.p interpolation (Sternheimer response) from anchors 0.25 apart.
FAST = SolverOptions()
# At least MPB resolution 32's accuracy on every cell kind (measured, README "Accuracy presets"): larger bases at the
# anchors only (TE converges more slowly than TM), anchors 0.5 apart with 8 extra anchor bands; the reduced problems
# between anchors keep their size, so the extra cost is the anchor solves.
STANDARD = SolverOptions(cutoff=14.0, te_cutoff=16.0, anchor_spacing=0.5, anchor_extra_bands=8)
HIGH = SolverOptions(cutoff=16.0, te_cutoff=20.0, anchor_spacing=0.5, anchor_extra_bands=8)
PRESETS = {"fast": FAST, "standard": STANDARD, "high": HIGH}
DEFAULT_PRESET = "fast"


def solver_options(value: SolverOptions | str | dict | None = None, **changes) -> SolverOptions:
    """Options from a preset name, a SolverOptions, a dict of changes to the default preset, or None (the default),
    with ``changes`` applied on top."""
    if value is None:
        base = PRESETS[DEFAULT_PRESET]
    elif isinstance(value, SolverOptions):
        base = value
    elif isinstance(value, str):
        if value not in PRESETS:
            raise PhotosslError(f"unknown solver preset '{value}' (one of {', '.join(PRESETS)})")
        base = PRESETS[value]
    elif isinstance(value, dict):
        base, changes = PRESETS[DEFAULT_PRESET], {**value, **changes}
    else:
        raise PhotosslError(
            f"solver options must be a preset name, a SolverOptions or a dict, got {type(value).__name__}"
        )
    return base.replace(**changes) if changes else base
