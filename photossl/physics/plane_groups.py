"""The 12 plane groups compatible with the square lattice, as operations on lattice coordinates.

An operation maps r -> R r + t (r in fractions of the lattice vectors, R an integer 2x2 matrix, t a fraction
vector with entries in {0, 1/2}). On an N x N pixel grid whose pixel (i, j) is centred at (i/N, j/N), every operation
with N even maps pixel centres onto pixel centres, so symmetric cells can be exactly (pixel-for-pixel) invariant.

Rectangular groups (pm, pg, pmm, pmg, pgg) use the lattice axes; the centred groups (cm, cmm) put their mirrors on
the square's diagonals, which is how a centred rectangular lattice sits on the square lattice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photossl.errors import PhotosslError


@dataclass(frozen=True)
class SpaceOperation:
    """r -> rotation @ r + shift, with ``rotation`` integer (2, 2) and ``shift`` in half lattice vectors."""

    rotation: tuple[tuple[int, int], tuple[int, int]]
    shift: tuple[float, float] = (0.0, 0.0)

    @property
    def matrix(self) -> np.ndarray:
        return np.array(self.rotation, dtype=np.int64)


def _op(r00: int, r01: int, r10: int, r11: int, tx: float = 0.0, ty: float = 0.0) -> SpaceOperation:
    return SpaceOperation(((r00, r01), (r10, r11)), (tx, ty))


_E = _op(1, 0, 0, 1)
_C2 = _op(-1, 0, 0, -1)
_C4 = _op(0, -1, 1, 0)
_C4_INV = _op(0, 1, -1, 0)
_MIRROR_X = _op(-1, 0, 0, 1)  # x -> -x
_MIRROR_Y = _op(1, 0, 0, -1)  # y -> -y
_MIRROR_DIAG = _op(0, 1, 1, 0)  # x <-> y
_MIRROR_ANTI = _op(0, -1, -1, 0)  # (x, y) -> (-y, -x)
_H = 0.5

PLANE_GROUPS: dict[str, tuple[SpaceOperation, ...]] = {
    "p1": (_E,),
    "p2": (_E, _C2),
    "pm": (_E, _MIRROR_X),
    "pg": (_E, _op(-1, 0, 0, 1, 0.0, _H)),
    "cm": (_E, _MIRROR_DIAG),
    "pmm": (_E, _C2, _MIRROR_X, _MIRROR_Y),
    "pmg": (_E, _C2, _op(-1, 0, 0, 1, _H, 0.0), _op(1, 0, 0, -1, _H, 0.0)),
    "pgg": (_E, _C2, _op(-1, 0, 0, 1, _H, _H), _op(1, 0, 0, -1, _H, _H)),
    "cmm": (_E, _C2, _MIRROR_DIAG, _MIRROR_ANTI),
    "p4": (_E, _C2, _C4, _C4_INV),
    "p4m": (_E, _C2, _C4, _C4_INV, _MIRROR_X, _MIRROR_Y, _MIRROR_DIAG, _MIRROR_ANTI),
    "p4g": (
        _E,
        _C2,
        _C4,
        _C4_INV,
        _op(-1, 0, 0, 1, _H, _H),
        _op(1, 0, 0, -1, _H, _H),
        _op(0, 1, 1, 0, _H, _H),
        _op(0, -1, -1, 0, _H, _H),
    ),
}

# The 8 point operations of the square (D4), used for point-group detection and k-point reduction.
D4_ROTATIONS: tuple[np.ndarray, ...] = tuple(
    op.matrix for op in (_E, _C4, _C2, _C4_INV, _MIRROR_X, _MIRROR_Y, _MIRROR_DIAG, _MIRROR_ANTI)
)


def plane_group(name: str) -> tuple[SpaceOperation, ...]:
    """Operations of plane group ``name`` (case-insensitive); unknown names raise PhotosslError."""
    key = name.lower()
    if key not in PLANE_GROUPS:
        raise PhotosslError(f"unknown plane group '{name}' (square-lattice groups: {', '.join(PLANE_GROUPS)})")
    return PLANE_GROUPS[key]


def point_group(name: str) -> tuple[np.ndarray, ...]:
    """The rotation parts (point group) of plane group ``name``."""
    return tuple(op.matrix for op in plane_group(name))


def pixel_index_map(op: SpaceOperation, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer index arrays (I, J) with I[i, j], J[i, j] = pixel that ``op`` maps pixel (i, j) onto."""
    if n % 2 and any(op.shift):
        raise PhotosslError(f"plane groups with half-cell glides need an even grid size, got N={n}")
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rot = op.matrix
    shift = (np.asarray(op.shift) * n).astype(np.int64)
    mapped_i = (rot[0, 0] * i + rot[0, 1] * j + shift[0]) % n
    mapped_j = (rot[1, 0] * i + rot[1, 1] * j + shift[1]) % n
    return mapped_i, mapped_j


def apply_operation(cell: np.ndarray, op: SpaceOperation) -> np.ndarray:
    """The cell transformed by ``op``: result(op r) = cell(r), on an (..., N, N) pixel grid."""
    n = cell.shape[-1]
    mapped_i, mapped_j = pixel_index_map(op, n)
    out = np.empty_like(cell)
    out[..., mapped_i, mapped_j] = cell
    return out


def symmetrize(values: np.ndarray, group: str) -> np.ndarray:
    """Group average of an (N, N) grid function, exactly invariant under every operation of ``group``.

    The orbit members are sorted before summing so every pixel of an orbit receives bit-identical values.
    """
    ops = plane_group(group)
    stacked = np.stack([apply_operation(values, op) for op in ops])
    return np.sort(stacked, axis=0).sum(axis=0) / len(ops)
