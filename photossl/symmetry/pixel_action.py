"""Exact pixel actions of point operations, translations and ε scaling, batched with one gather.

Every operation permutes the N² pixels and may scale the values. Output pixel i' takes the value of source pixel
g⁻¹ i' = Pᵀ (i' − t) mod N (Pᵀ = P⁻¹ in D4). Rotations and mirrors are therefore about pixel 0, which maps
index i -> (−i) mod N; torch.rot90 / torch.flip map i -> N − 1 − i, i.e. they add a one-pixel translation. Using a
gather with a (B, N²) source index instead of rot90/flip + roll lets every sample get its own element in a single
kernel; the index costs O(B N²) integer operations on the input's device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from photossl.errors import PhotosslError

if TYPE_CHECKING:
    from photossl.symmetry.elements import Element


def grid_size(x: torch.Tensor) -> int:
    """N for cells of shape (..., N, N); ValueError for non-square or 1-D input."""
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise PhotosslError(f"unit cells must have shape (..., N, N), got {tuple(x.shape)}")
    return x.shape[-1]


def source_index(point: torch.Tensor, shift: torch.Tensor, size: int) -> torch.Tensor:
    """Flat index of the source pixel of every output pixel, for per-sample D4 elements.

    Shape: point (B, 2, 2) integer (each one of the D4 matrices), shift (B, 2) integer pixels -> (B, N²) long on
    point's device.
    """
    point = point.long()
    shift = shift.to(device=point.device, dtype=torch.long)
    i = torch.arange(size, device=point.device)[None]
    rx = i - shift[:, :1]  # (B, N): x along axis -2
    ry = i - shift[:, 1:]
    # Source = Pᵀ r. Every row and column of a D4 matrix has one non-zero entry, so the flat index splits into a
    # part that depends on the output row and one that depends on the output column: O(B N) work, one (B, N, N) add.
    rows = (point[:, 0, 0, None] * rx).remainder(size) * size + (point[:, 0, 1, None] * rx).remainder(size)
    cols = (point[:, 1, 0, None] * ry).remainder(size) * size + (point[:, 1, 1, None] * ry).remainder(size)
    return (rows[:, :, None] + cols[:, None, :]).reshape(point.shape[0], size * size)


def gather_pixels(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """out[..., p] = x[..., index[p]] over the flattened last two axes.

    Shape: x (..., H, W) with index (H·W,), or x (B, ..., H, W) with a per-sample index (B, H·W).
    """
    h, w = x.shape[-2:]
    if index.dim() == 1:
        return x.flatten(-2).index_select(-1, index).reshape(x.shape)
    batch = x.shape[0]
    if index.shape != (batch, h * w):
        raise PhotosslError(f"per-sample index must have shape ({batch}, {h * w}), got {tuple(index.shape)}")
    flat = x.reshape(batch, -1, h * w)
    return flat.gather(-1, index[:, None, :].expand(flat.shape)).reshape(x.shape)


def scale_values(
    x: torch.Tensor, scale: float | torch.Tensor, eps_normalisation: tuple[float, float] | None = None
) -> torch.Tensor:
    """ε -> s·ε on raw ε, or on x = (ε − offset)/width when ``eps_normalisation=(offset, width)``.

    Shape: x (B, ...) with scale a number or (B,).
    """
    if isinstance(scale, torch.Tensor):
        scale = scale.to(device=x.device, dtype=x.dtype).reshape((-1,) + (1,) * (x.dim() - 1))
    if eps_normalisation is None:
        return x * scale
    offset, width = eps_normalisation
    # ((width·x + offset)·s − offset)/width
    return x * scale + (scale - 1) * (offset / width)


def apply_element(
    x: torch.Tensor, element: Element, eps_normalisation: tuple[float, float] | None = None
) -> torch.Tensor:
    """One element on every cell. Shape: (..., N, N) -> (..., N, N)."""
    size = grid_size(x)
    point = torch.tensor(element.point, device=x.device)[None]
    shift = torch.tensor(element.pixel_shift(size), device=x.device)[None]
    out = gather_pixels(x, source_index(point, shift, size)[0])
    if element.scale != 1:
        out = scale_values(out, float(element.scale), eps_normalisation)
    return out


def apply_elements(
    x: torch.Tensor,
    point: torch.Tensor,
    shift: torch.Tensor,
    scale: torch.Tensor | None = None,
    eps_normalisation: tuple[float, float] | None = None,
) -> torch.Tensor:
    """A different element on every sample.

    Shape: x (B, ..., N, N), point (B, 2, 2), shift (B, 2) in pixels, scale (B,) or None -> (B, ..., N, N).
    """
    size = grid_size(x)
    if x.dim() < 3 or point.shape != (x.shape[0], 2, 2) or shift.shape != (x.shape[0], 2):
        raise PhotosslError(
            f"per-sample elements need x (B, ..., N, N), point (B, 2, 2), shift (B, 2); got x {tuple(x.shape)}, "
            f"point {tuple(point.shape)}, shift {tuple(shift.shape)}"
        )
    out = gather_pixels(x, source_index(point.to(x.device), shift, size))
    if scale is not None:
        out = scale_values(out, scale, eps_normalisation)
    return out


def vectorised_roll(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Per-sample periodic roll: out[b, ..., i, j] = x[b, ..., (i − s_b0) mod H, (j − s_b1) mod W].

    Sample b equals ``torch.roll(x[b], tuple(shifts[b]), dims=(-2, -1))``. Shape: x (B, ..., H, W), shifts (B, 2)
    integer -> (B, ..., H, W).
    """
    if x.dim() < 3 or shifts.shape != (x.shape[0], 2):
        raise PhotosslError(f"shifts must have shape (B, 2) for x (B, ..., H, W); got {tuple(shifts.shape)}")
    if shifts.dtype.is_floating_point or shifts.dtype == torch.bool:
        raise PhotosslError(f"shifts must be integers, got dtype {shifts.dtype}")
    h, w = x.shape[-2:]
    shifts = shifts.to(device=x.device, dtype=torch.long)
    rows = (torch.arange(h, device=x.device)[None] - shifts[:, :1]).remainder(h)
    cols = (torch.arange(w, device=x.device)[None] - shifts[:, 1:]).remainder(w)
    index = (rows[:, :, None] * w + cols[:, None, :]).reshape(x.shape[0], h * w)
    return gather_pixels(x, index)
