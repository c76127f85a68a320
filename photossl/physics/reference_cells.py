"""One cell of every kind the generators make, by seed: what solver accuracy is measured on.

Kinds: Fourier level sets of plane groups p1, pm and p4m (SIB-CL ranges), rods in air, air holes, SIB-CL's surrogate
cylinder, and binary random pixels at high contrast (the hardest staircase for a truncated plane-wave basis). Seed 0
gives the textbook rods (r = 0.2a, eps 8.9) and holes (r = 0.3a in eps 12); other seeds draw radius and eps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from photossl.physics.cells import (
    fourier_level_set_cell,
    holes_cell,
    random_pixel_cell,
    rods_cell,
    surrogate_cylinder_cell,
)


def _radius_eps(seed: int, radius_range: tuple[float, float], eps_range: tuple[float, float]) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    return float(rng.uniform(*radius_range)), float(rng.uniform(*eps_range))


def _rods(seed: int, n: int) -> np.ndarray:
    radius, eps = (0.2, 8.9) if seed == 0 else _radius_eps(seed, (0.1, 0.35), (8.0, 20.0))
    return rods_cell(radius, eps, 1.0, n=n)


def _holes(seed: int, n: int) -> np.ndarray:
    radius, eps = (0.3, 12.0) if seed == 0 else _radius_eps(seed, (0.15, 0.45), (8.0, 20.0))
    return holes_cell(radius, eps, 1.0, n=n)


CELL_KINDS: dict[str, Callable[[int, int], np.ndarray]] = {
    "levelset-p1": lambda seed, n: fourier_level_set_cell(seed, n=n, group="p1").eps,
    "levelset-pm": lambda seed, n: fourier_level_set_cell(seed, n=n, group="pm").eps,
    "levelset-p4m": lambda seed, n: fourier_level_set_cell(seed, n=n, group="p4m").eps,
    "rods": _rods,
    "holes": _holes,
    "cylinder": lambda seed, n: surrogate_cylinder_cell(seed, n=n)[0],
    "random-pixels": lambda seed, n: random_pixel_cell(seed, n=n, eps_in_range=(8.0, 20.0),
                                                       eps_out_range=(1.0, 2.0))[0],
}


def reference_cell(kind: str, seed: int = 0, n: int = 32) -> np.ndarray:
    """The (n, n) permittivity of cell ``seed`` of ``kind`` (one of :data:`CELL_KINDS`)."""
    from photossl.errors import PhotosslError

    if kind not in CELL_KINDS:
        raise PhotosslError(f"unknown cell kind '{kind}' (one of {', '.join(CELL_KINDS)})")
    return CELL_KINDS[kind](seed, n)
