"""Symmetry elements of a square-lattice unit cell: ε scaling × D4 point operation ⋉ periodic translation.

Coordinates. A unit cell is an image (..., N, N); axis -2 is x (first lattice vector a₁), axis -1 is y (a₂).
Pixel (i, j) sits at r = (i, j)/N in lattice coordinates, so pixel 0 is the origin and indices are periodic.
Because the lattice is square with a = 1, lattice and Cartesian coordinates coincide, and the point operations
are the eight integer orthogonal 2×2 matrices (the group D4).

An element g = (s, P, t) maps positions r -> P r + t (t in fractions of the lattice vectors, reduced mod 1) and
multiplies ε by s. The transformed cell g·ε is defined by (g·ε)(P r + t) = s·ε(r), which makes the action a left
action: (g @ h)·ε = g·(h·ε). Composition is the semidirect-product law
(s, P, t) @ (s', P', t') = (s s', P P', P t' + t).

Translations are stored as exact fractions so that elements do not depend on the grid size: the half-cell
translation (1/2, 0) is one element on every even grid. Scales are exact fractions too (a float converts exactly),
so inverse and composition are exact and elements can be compared and hashed.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from fractions import Fraction
from numbers import Rational
from typing import TYPE_CHECKING

from photossl.errors import PhotosslError
from photossl.symmetry.pixel_action import apply_element

if TYPE_CHECKING:
    import torch

Matrix = tuple[tuple[int, int], tuple[int, int]]

IDENTITY_MATRIX: Matrix = ((1, 0), (0, 1))
# Quarter turn from axis -2 towards axis -1: (x, y) -> (-y, x); the same sense as torch.rot90(x, 1, dims=(-2, -1)).
ROTATION_MATRIX: Matrix = ((0, -1), (1, 0))
MIRROR_MATRICES: dict[str, Matrix] = {
    "x": ((-1, 0), (0, 1)),  # x -> -x: reverses axis -2 (about pixel 0)
    "y": ((1, 0), (0, -1)),  # y -> -y: reverses axis -1
    "diagonal": ((0, 1), (1, 0)),  # x <-> y: transpose
    "antidiagonal": ((0, -1), (-1, 0)),  # (x, y) -> (-y, -x)
}


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """Product of two 2×2 integer matrices."""
    return (
        (a[0][0] * b[0][0] + a[0][1] * b[1][0], a[0][0] * b[0][1] + a[0][1] * b[1][1]),
        (a[1][0] * b[0][0] + a[1][1] * b[1][0], a[1][0] * b[0][1] + a[1][1] * b[1][1]),
    )


def transpose(a: Matrix) -> Matrix:
    """Transpose of a 2×2 matrix (the inverse, for the orthogonal matrices of D4)."""
    return ((a[0][0], a[1][0]), (a[0][1], a[1][1]))


def _matvec(a: Matrix, v: tuple[Fraction, Fraction]) -> tuple[Fraction, Fraction]:
    return (a[0][0] * v[0] + a[0][1] * v[1], a[1][0] * v[0] + a[1][1] * v[1])


def _quarter_turns(k: int) -> Matrix:
    out = IDENTITY_MATRIX
    for _ in range(k % 4):
        out = matmul(ROTATION_MATRIX, out)
    return out


# D4 in label order: label = k + 4 f  <->  R^k m_x^f (R the quarter turn, m_x the mirror reversing axis -2).
D4_MATRICES: tuple[Matrix, ...] = tuple(
    matmul(_quarter_turns(k), MIRROR_MATRICES["x"] if f else IDENTITY_MATRIX)
    for f in range(2)
    for k in range(4)
)


def d4_label(point: Matrix) -> int:
    """Index of a point operation in :data:`D4_MATRICES` (label k + 4 f for R^k m_x^f)."""
    return D4_MATRICES.index(point)


def _as_fraction(value: object, what: str) -> Fraction:
    if isinstance(value, bool):
        raise PhotosslError(f"{what} must be a number, got {value!r}")
    if isinstance(value, (Rational, float)):
        return Fraction(value)
    try:  # numpy / torch scalars
        return Fraction(value.item())  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        raise PhotosslError(f"{what} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class Element:
    """One symmetry operation g = (scale, point, shift): r -> point·r + shift, ε -> scale·ε.

    Attributes:
        point: 2×2 integer orthogonal matrix (one of :data:`D4_MATRICES`) acting on (x, y) lattice coordinates.
        shift: translation (t_x, t_y) in fractions of the lattice vectors, reduced to [0, 1).
        scale: factor s > 0 applied to the permittivity values. It acts on raw ε: for a network input
            (ε − 1)/19 pass ``eps_normalisation=(1, 19)`` to :meth:`apply` (or scale before normalising).
    """

    point: Matrix = IDENTITY_MATRIX
    shift: tuple[Fraction, Fraction] = (Fraction(0), Fraction(0))
    scale: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        try:
            point = tuple(tuple(operator.index(v) for v in row) for row in self.point)
        except TypeError:
            raise PhotosslError(f"point must be a 2×2 integer matrix, got {self.point!r}") from None
        if len(point) != 2 or any(len(row) != 2 for row in point) or point not in D4_MATRICES:
            raise PhotosslError(f"point must be one of the 8 orthogonal integer matrices of D4, got {self.point!r}")
        if len(self.shift) != 2:
            raise PhotosslError(f"shift must have two components, got {self.shift!r}")
        shift = tuple(_as_fraction(v, "shift") % 1 for v in self.shift)
        scale = _as_fraction(self.scale, "scale")
        if scale <= 0:
            raise PhotosslError(f"scale must be > 0, got {self.scale!r}")
        object.__setattr__(self, "point", point)
        object.__setattr__(self, "shift", shift)
        object.__setattr__(self, "scale", scale)

    # -- constructors -------------------------------------------------------------------------------------------
    @classmethod
    def identity(cls) -> Element:
        return cls()

    @classmethod
    def rotation(cls, quarter_turns: int) -> Element:
        """Rotation about the origin (pixel 0) by ``quarter_turns``·90°, from axis -2 towards axis -1."""
        return cls(point=_quarter_turns(operator.index(quarter_turns)))

    @classmethod
    def mirror(cls, axis: str) -> Element:
        """Mirror through the origin: 'x' (reverses axis -2), 'y' (reverses axis -1), 'diagonal', 'antidiagonal'."""
        if axis not in MIRROR_MATRICES:
            raise PhotosslError(f"unknown mirror '{axis}' (allowed: {', '.join(MIRROR_MATRICES)})")
        return cls(point=MIRROR_MATRICES[axis])

    @classmethod
    def translation(cls, dx: int, dy: int, size: int) -> Element:
        """Periodic translation by (dx, dy) pixels of a ``size``×``size`` grid (torch.roll by (dx, dy))."""
        size = operator.index(size)
        if size < 1:
            raise PhotosslError(f"size must be >= 1, got {size}")
        return cls(shift=(Fraction(operator.index(dx), size), Fraction(operator.index(dy), size)))

    @classmethod
    def scaling(cls, scale: float) -> Element:
        """ε -> scale·ε (raw permittivity)."""
        return cls(scale=scale)

    # -- group law ----------------------------------------------------------------------------------------------
    def __matmul__(self, other: Element) -> Element:
        """``g @ h`` acts as h first, then g: (g @ h)·ε = g·(h·ε)."""
        if not isinstance(other, Element):
            return NotImplemented
        shift = _matvec(self.point, other.shift)
        return Element(
            point=matmul(self.point, other.point),
            shift=(shift[0] + self.shift[0], shift[1] + self.shift[1]),
            scale=self.scale * other.scale,
        )

    __mul__ = __matmul__

    def inverse(self) -> Element:
        inv = transpose(self.point)
        shift = _matvec(inv, self.shift)
        return Element(point=inv, shift=(-shift[0], -shift[1]), scale=1 / self.scale)

    @property
    def is_identity(self) -> bool:
        return self == Element()

    def map_position(self, r: tuple[float, float]) -> tuple[float, float]:
        """Image P r + t of a position r given in lattice coordinates (not reduced mod 1)."""
        p = self.point
        return (
            p[0][0] * r[0] + p[0][1] * r[1] + float(self.shift[0]),
            p[1][0] * r[0] + p[1][1] * r[1] + float(self.shift[1]),
        )

    def pixel_shift(self, size: int) -> tuple[int, int]:
        """The translation in pixels of a ``size``×``size`` grid, in [0, size); ValueError if not whole pixels."""
        pixels = tuple(t * size for t in self.shift)
        if any(p.denominator != 1 for p in pixels):
            raise PhotosslError(
                f"translation {self.shift_repr()} is not a whole number of pixels on a {size}×{size} grid"
            )
        return (int(pixels[0]), int(pixels[1]))

    def shift_repr(self) -> str:
        return f"({self.shift[0]}, {self.shift[1]})"

    def apply(self, x: torch.Tensor, eps_normalisation: tuple[float, float] | None = None) -> torch.Tensor:
        """The transformed cells g·x, exact on pixels.

        Shape: x (..., N, N) -> (..., N, N). ``eps_normalisation=(offset, width)`` says x = (ε − offset)/width,
        so that the scale acts on raw ε; None means x is raw ε.
        """
        return apply_element(x, self, eps_normalisation)

    def __repr__(self) -> str:
        return f"Element(point={self.point}, shift={self.shift_repr()}, scale={self.scale})"
