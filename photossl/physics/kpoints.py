"""k-point sets for the square lattice and their reduction by symmetry.

k-points are (K, 2) arrays in fractions of the reciprocal lattice vectors (2 pi/a x, 2 pi/a y). On the square lattice
these fractions are also Cartesian components in units of 2 pi/a, so a real-space point operation R (integer,
orthogonal) acts on k as R k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from photossl.errors import PhotosslError
from photossl.physics.plane_groups import D4_ROTATIONS


def sibcl_grid(n: int = 25, margin: float = 0.02) -> np.ndarray:
    """The SIB-CL k-grid: k_x, k_y = linspace(-0.5 + margin, 0.5 - margin, n) -> (n*n, 2), k_x slowest.

    With the defaults (25 points, margin 0.02) the points are the centres of a 25 x 25 tiling of the Brillouin zone.
    """
    if n < 1:
        raise PhotosslError(f"k-grid size must be >= 1, got {n}")
    axis = np.linspace(-0.5 + margin, 0.5 - margin, n)
    kx, ky = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([kx.ravel(), ky.ravel()], axis=1)


def monkhorst_pack_grid(n: int) -> np.ndarray:
    """The n x n grid of Brillouin-zone tile centres, ((i + 1/2)/n - 1/2); equals sibcl_grid(25) for n = 25."""
    return sibcl_grid(n, margin=0.5 / n)


@dataclass(frozen=True)
class KPath:
    """A piecewise-linear path through the Brillouin zone."""

    kpoints: np.ndarray  # (K, 2)
    distance: np.ndarray  # (K,) cumulative path length in units of 2 pi/a
    tick_positions: np.ndarray  # (n_vertices,)
    tick_labels: tuple[str, ...]


HIGH_SYMMETRY_POINTS = {"G": (0.0, 0.0), "X": (0.5, 0.0), "Y": (0.0, 0.5), "M": (0.5, 0.5)}
_C4 = np.array([[0, -1], [1, 0]])


def gxmg_path(points_per_segment: int = 16, vertices: str = "GXMG") -> KPath:
    """The Gamma-X-M-Gamma path (or any sequence of 'G', 'X', 'Y', 'M'), ``points_per_segment`` steps per segment."""
    if points_per_segment < 1:
        raise PhotosslError(f"points per segment must be >= 1, got {points_per_segment}")
    unknown = set(vertices) - set(HIGH_SYMMETRY_POINTS)
    if unknown or len(vertices) < 2:
        raise PhotosslError(f"path vertices must be two or more of G, X, Y, M, got '{vertices}'")
    corners = np.array([HIGH_SYMMETRY_POINTS[v] for v in vertices])
    segments = []
    for start, stop in zip(corners[:-1], corners[1:]):
        t = np.arange(points_per_segment)[:, None] / points_per_segment
        segments.append(start + t * (stop - start))
    segments.append(corners[-1:])
    kpoints = np.concatenate(segments)
    steps = np.linalg.norm(np.diff(kpoints, axis=0), axis=1)
    distance = np.concatenate([[0.0], np.cumsum(steps)])
    ticks = distance[:: points_per_segment]
    labels = tuple("Γ" if v == "G" else v for v in vertices)
    return KPath(kpoints, distance, ticks, labels)


def irreducible_path_vertices(rotations) -> str:
    """The high-symmetry path of a cell with point operations ``rotations`` (:func:`cell_point_group`).

    With a 4-fold axis Γ-X-M-Γ is the usual path (the irreducible-zone edges of p4m). Without one, x and y are not
    equivalent, so the path also runs along y: Γ-X-M-Γ-Y-M, the edges of the irreducible zone of a rectangular
    (pmm) cell. Cells with less symmetry (p1, p2, pm, ...) have further inequivalent directions that no short path
    covers; :func:`photossl.physics.band_report.compute_band_report` therefore reads complete gaps off the full
    k-grid as well as the path.
    """
    has_c4 = any(np.array_equal(np.asarray(r), _C4) or np.array_equal(np.asarray(r), _C4.T) for r in rotations)
    return "GXMG" if has_c4 else "GXMGYM"


@dataclass(frozen=True)
class IrreducibleKPoints:
    """A k-point set reduced by symmetry: solve at ``kpoints[indices]``, expand with ``inverse``."""

    indices: np.ndarray  # (K_irr,) indices into the full set
    inverse: np.ndarray  # (K,) position in ``indices`` of each full k-point's representative
    weights: np.ndarray  # (K_irr,) number of full k-points each representative stands for


def _grid_keys(kpoints: np.ndarray, tolerance: float) -> np.ndarray:
    wrapped = np.mod(kpoints + 0.5, 1.0) - 0.5
    keys = np.round(wrapped / tolerance).astype(np.int64)
    period = int(round(1.0 / tolerance))
    keys = np.mod(keys + period // 2, period) - period // 2  # -0.5 and 0.5 are one point
    return keys


def reduce_kpoints(
    kpoints: np.ndarray,
    rotations: tuple[np.ndarray, ...] | list[np.ndarray] = (np.eye(2, dtype=np.int64),),
    time_reversal: bool = True,
    tolerance: float = 1e-9,
) -> IrreducibleKPoints:
    """Group k-points related by the point group (``rotations``), time reversal and reciprocal lattice vectors.

    Only images present in the set are used, so any set reduces correctly; a closed set (e.g. the SIB-CL grid) gains
    the most. For p1 cells time reversal alone halves the SIB-CL grid (625 -> 313).
    """
    kpoints = np.asarray(kpoints, dtype=np.float64)
    if kpoints.ndim != 2 or kpoints.shape[1] != 2:
        raise PhotosslError(f"k-points must have shape (K, 2), got {kpoints.shape}")
    operations = [np.asarray(r) for r in rotations]
    if time_reversal:
        operations = operations + [-r for r in operations]
    base_keys = _grid_keys(kpoints, tolerance)
    lookup: dict[tuple[int, int], int] = {}
    for index, key in enumerate(map(tuple, base_keys)):
        lookup.setdefault(key, index)
    representative = np.arange(len(kpoints))
    for rotation in operations:
        image_keys = _grid_keys(kpoints @ rotation.T, tolerance)
        for index, key in enumerate(map(tuple, image_keys)):
            found = lookup.get(key)
            if found is not None and found < representative[index]:
                representative[index] = found
    # Orbits are closed under the group, so one pass finds each orbit's smallest index; repeat for safety.
    while True:
        updated = representative[representative]
        if np.array_equal(updated, representative):
            break
        representative = updated
    indices, inverse, weights = np.unique(representative, return_inverse=True, return_counts=True)
    return IrreducibleKPoints(indices, inverse.reshape(-1), weights)


def cell_point_group(eps: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, ...]:
    """The point operations of D4 that map an (N, N) cell onto itself up to a periodic translation.

    A glide or screw (an operation with a fractional translation) counts: bands depend only on the rotation part.
    """
    eps = np.asarray(eps, dtype=np.float64)
    n = eps.shape[-1]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    spectrum = np.fft.fft2(eps)
    norm = float(np.sum(eps**2))
    found = []
    for rotation in D4_ROTATIONS:
        mapped_i = (rotation[0, 0] * i + rotation[0, 1] * j) % n
        mapped_j = (rotation[1, 0] * i + rotation[1, 1] * j) % n
        transformed = np.empty_like(eps)
        transformed[mapped_i, mapped_j] = eps
        correlation = np.real(np.fft.ifft2(spectrum * np.conj(np.fft.fft2(transformed))))
        shift = np.unravel_index(np.argmax(correlation), correlation.shape)
        if norm - correlation[shift] > rtol * norm:
            continue
        if np.allclose(np.roll(transformed, shift, axis=(0, 1)), eps, rtol=0, atol=rtol * np.abs(eps).max()):
            found.append(rotation)
    return tuple(found)
