"""Two-phase square-lattice unit cells: Fourier level sets with an enforced plane group, and textbook cells.

Conventions: a cell is an (N, N) float64 array of relative permittivity; axis 0 is x (first lattice vector), axis 1
is y; pixel (i, j) is the square of side 1/N centred at (i/N, j/N) in lattice coordinates (a = 1). Every generator is
a pure function of its parameters and seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from photossl.errors import PhotosslError
from photossl.physics.plane_groups import plane_group, symmetrize


@dataclass(frozen=True)
class LevelSetCell:
    """A generated Fourier level-set cell and the parameters that made it."""

    eps: np.ndarray  # (N, N)
    eps_in: float  # permittivity where f > level
    eps_out: float  # permittivity where f <= level
    filling: float  # requested fraction of the fine-grid samples with f <= level (the reference's definition)
    level: float
    coefficients: np.ndarray  # (2M+1, 2M+1) complex Fourier coefficients c_G, G = (gx, gy) in [-M, M]^2
    group: str
    seed: int
    extra: dict = field(default_factory=dict)

    @property
    def eps_mean(self) -> float:
        return float(self.eps.mean())


def _fourier_sum(coefficients: np.ndarray, n: int) -> np.ndarray:
    """f(r) = sum_G [Re c_G cos(2 pi G.r) - Im c_G sin(2 pi G.r)] = Re sum_G c_G exp(2 pi i G.r) on (i/n, j/n)."""
    order = (coefficients.shape[0] - 1) // 2
    g = np.arange(-order, order + 1)
    x = np.arange(n) / n
    phase_x = np.exp(2j * np.pi * np.outer(x, g))  # (n, 2M+1)
    return np.real(phase_x @ coefficients @ phase_x.T)


def validate_eps_range(name: str, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 or high < low:
        raise PhotosslError(f"{name} must be a finite range 0 < low <= high, got {bounds}")


def fourier_level_set_cell(
    seed: int,
    n: int = 32,
    max_order: int = 1,
    group: str = "p1",
    filling_range: tuple[float, float] = (0.01, 0.99),
    eps_in_range: tuple[float, float] = (1.0, 20.0),
    eps_out_range: tuple[float, float] = (1.0, 20.0),
    oversample: int = 4,
) -> LevelSetCell:
    """A two-phase cell from a level set of a random Fourier sum (the SIB-CL recipe), with plane group ``group``.

    c_G = rho exp(i phi), rho ~ U(0, 1), phi ~ U(0, 2 pi) for G in [-max_order, max_order]^2. The sum is averaged over
    ``group`` (exactly, so the pixel map is invariant pixel-for-pixel); the level is the ``filling``-quantile of f on a
    grid ``oversample`` times finer, filling ~ U(filling_range); f > level gets eps_in, the rest eps_out, with
    eps_in ~ U(eps_in_range), eps_out ~ U(eps_out_range) drawn independently.
    """
    if n < 2:
        raise PhotosslError(f"cell size must be at least 2 pixels, got {n}")
    if max_order < 1:
        raise PhotosslError(f"max Fourier order must be >= 1, got {max_order}")
    lo, hi = filling_range
    if not 0 <= lo <= hi <= 1:
        raise PhotosslError(f"filling range must satisfy 0 <= low <= high <= 1, got {filling_range}")
    validate_eps_range("eps_in range", eps_in_range)
    validate_eps_range("eps_out range", eps_out_range)
    plane_group(group)  # validates the name

    rng = np.random.default_rng(seed)
    size = 2 * max_order + 1
    rho = rng.uniform(0.0, 1.0, (size, size))
    phi = rng.uniform(0.0, 2 * np.pi, (size, size))
    coefficients = rho * np.exp(1j * phi)
    filling = float(rng.uniform(lo, hi))
    eps_in = float(rng.uniform(*eps_in_range))
    eps_out = float(rng.uniform(*eps_out_range))

    fine = symmetrize(_fourier_sum(coefficients, n * oversample), group)
    level = float(np.quantile(fine, filling))
    values = symmetrize(_fourier_sum(coefficients, n), group)
    eps = np.where(values > level, eps_in, eps_out).astype(np.float64)
    return LevelSetCell(eps, eps_in, eps_out, filling, level, coefficients, group.lower(), int(seed))


def _disk_fraction(n: int, radius: float, supersample: int) -> np.ndarray:
    """Fraction of each pixel inside a disk of ``radius`` centred at the cell centre (pixel n/2)."""
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    centres = (np.arange(n) - n / 2) / n
    coords = (centres[:, None] + sub[None, :] / n).reshape(-1)
    inside = (coords[:, None] ** 2 + coords[None, :] ** 2) < radius**2
    return inside.reshape(n, supersample, n, supersample).mean(axis=(1, 3))


def cylinder_cell(
    radius: float, eps_in: float, eps_out: float, n: int = 32, supersample: int = 1
) -> np.ndarray:
    """A centred cylinder (disk) of ``radius`` (lattice units) with eps_in inside and eps_out outside.

    With ``supersample`` > 1 a boundary pixel gets the area-weighted mean of the two permittivities.
    """
    if not 0 < radius <= 0.5:
        raise PhotosslError(f"cylinder radius must be in (0, 0.5], got {radius}")
    if supersample < 1:
        raise PhotosslError(f"supersample must be >= 1, got {supersample}")
    validate_eps_range("eps_in", (eps_in, eps_in))
    validate_eps_range("eps_out", (eps_out, eps_out))
    fraction = _disk_fraction(n, radius, supersample)
    return eps_out + (eps_in - eps_out) * fraction


def rods_cell(radius: float = 0.2, eps_rod: float = 8.9, eps_background: float = 1.0, n: int = 32,
              supersample: int = 1) -> np.ndarray:
    """Dielectric rods in a background (the textbook square lattice of rods: r = 0.2 a, eps = 8.9 in air)."""
    return cylinder_cell(radius, eps_rod, eps_background, n, supersample)


def holes_cell(radius: float = 0.3, eps_background: float = 12.0, eps_hole: float = 1.0, n: int = 32,
               supersample: int = 1) -> np.ndarray:
    """Air holes in a dielectric slab-like background (2D): the complement of rods."""
    return cylinder_cell(radius, eps_hole, eps_background, n, supersample)


def surrogate_cylinder_cell(
    seed: int,
    n: int = 32,
    radius_range: tuple[float, float] = (0.0, 0.5),
    eps_in_range: tuple[float, float] = (1.0, 20.0),
    eps_out_range: tuple[float, float] = (1.0, 20.0),
) -> tuple[np.ndarray, dict]:
    """The SIB-CL surrogate: one centred cylinder, radius ~ U(radius_range) (clipped to (0, 0.5]), random eps."""
    validate_eps_range("eps_in range", eps_in_range)
    validate_eps_range("eps_out range", eps_out_range)
    rng = np.random.default_rng(seed)
    radius = float(np.clip(rng.uniform(*radius_range), 1e-6, 0.5))
    eps_in = float(rng.uniform(*eps_in_range))
    eps_out = float(rng.uniform(*eps_out_range))
    eps = cylinder_cell(radius, eps_in, eps_out, n)
    return eps, {"radius": radius, "eps_in": eps_in, "eps_out": eps_out}


def random_pixel_cell(
    seed: int,
    n: int = 32,
    filling: float = 0.5,
    eps_in_range: tuple[float, float] = (1.0, 20.0),
    eps_out_range: tuple[float, float] = (1.0, 20.0),
) -> tuple[np.ndarray, dict]:
    """Binary random pixels: each pixel is eps_out with probability ``filling``, else eps_in (eps ~ U(range)).

    No interface is smooth on the pixel scale, so this is the hardest cell for a truncated plane-wave basis.
    """
    if not 0 <= filling <= 1:
        raise PhotosslError(f"filling must lie in [0, 1], got {filling}")
    validate_eps_range("eps_in range", eps_in_range)
    validate_eps_range("eps_out range", eps_out_range)
    rng = np.random.default_rng(seed)
    eps_in = float(rng.uniform(*eps_in_range))
    eps_out = float(rng.uniform(*eps_out_range))
    eps = np.where(rng.uniform(size=(n, n)) < filling, eps_out, eps_in).astype(np.float64)
    return eps, {"eps_in": eps_in, "eps_out": eps_out, "filling": filling}


def check_eps_dtype(array: np.ndarray, name: str = "permittivity") -> np.ndarray:
    """``array`` itself when it holds real numbers; strings, objects and complex values raise one PhotosslError line.

    Complex ε (absorbing media) is refused rather than truncated: the band solver models lossless dielectrics."""
    kind = array.dtype.kind
    if kind in "fiub":
        return array
    if kind == "c":
        raise PhotosslError(f"{name} is complex ({array.dtype}): the solver and models take lossless, real ε; pass "
                            "np.real(eps) yourself if the imaginary part is negligible")
    if kind in "USO":
        raise PhotosslError(f"{name} holds {'text' if kind in 'US' else 'Python objects'} (dtype {array.dtype}), not "
                            "numbers: save a float array, e.g. np.save(path, eps.astype(float))")
    raise PhotosslError(f"{name} must be a real numeric array, got dtype {array.dtype}")


def validate_eps(eps: np.ndarray, name: str = "permittivity") -> np.ndarray:
    """Return ``eps`` as float64 (N, N) or (B, N, N); NaN, inf, <= 0 or non-square maps raise PhotosslError."""
    array = check_eps_dtype(np.asarray(eps), name).astype(np.float64)
    if array.ndim not in (2, 3):
        raise PhotosslError(f"{name} must be a 2-D (N, N) map or a (B, N, N) batch, got shape {array.shape}")
    if array.shape[-1] != array.shape[-2]:
        raise PhotosslError(f"{name} map must be square (N, N), got shape {array.shape}")
    if array.shape[-1] < 2:
        raise PhotosslError(f"{name} map must be at least 2x2, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise PhotosslError(f"{name} contains NaN or infinite values")
    if np.any(array <= 0):
        raise PhotosslError(f"{name} must be > 0 everywhere (min is {array.min():g})")
    return array
