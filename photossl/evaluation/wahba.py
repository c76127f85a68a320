"""Wahba's problem: the orthogonal map that best carries one set of embeddings onto another (CARE §4).

Convention: embeddings are rows, as encoders return them. ``F`` (n, d) holds f(x_i) in row i and ``F_g`` (n, d)
holds f(g x_i); the map R acts on column vectors, f(g x) ≈ R f(x), so in row form F_g ≈ F Rᵀ. (The paper stacks
columns, F ∈ R^{d×n}; the error is the same number.)

The Wahba error is relative, W = min_R ‖F Rᵀ − F_g‖_F / ‖F_g‖_F, so that it does not depend on the
embeddings' scale: scaling both F and F_g by one factor leaves it unchanged. The paper's absolute W_f is W·‖F_g‖_F.

Both functions accept torch tensors (computed in float64 on their device) or numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from photossl.errors import PhotosslError


def _as_float64_pair(F: Any, F_g: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
    is_numpy = not isinstance(F, torch.Tensor) and not isinstance(F_g, torch.Tensor)
    device = next((t.device for t in (F, F_g) if isinstance(t, torch.Tensor)), torch.device("cpu"))
    # float64: the SVD of a near-exact fit must resolve residuals far below float32 precision.
    a = torch.as_tensor(np.asarray(F) if is_numpy else F, device=device).to(torch.float64)
    b = torch.as_tensor(np.asarray(F_g) if is_numpy else F_g, device=device).to(torch.float64)
    if a.dim() != 2 or a.shape != b.shape:
        raise PhotosslError(f"F and F_g must both be (n, d) of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise PhotosslError(f"F and F_g must be non-empty (n, d) arrays, got shape {tuple(a.shape)}")
    return a, b, is_numpy


def _kabsch(a: torch.Tensor, b: torch.Tensor, proper: bool) -> torch.Tensor:
    """argmax_R tr(R Σ_i a_i b_iᵀ) over O(d) (or SO(d)): R = U D Vᵀ from the SVD U S Vᵀ of H = bᵀ a."""
    u, _, vh = torch.linalg.svd(b.T @ a)
    if proper:
        # Flipping the direction of the smallest singular value is the cheapest way to reach det R = +1.
        sign = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh))
        u = torch.cat([u[:, :-1], u[:, -1:] * sign], dim=1)
    return u @ vh


def _normalise_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def wahba_rotation(F: Any, F_g: Any, proper: bool = True) -> Any:
    """The orthogonal R minimising ‖F Rᵀ − F_g‖_F (Kabsch / SVD), in SO(d) if ``proper`` else in O(d).

    With fewer than d linearly independent rows R is not unique off their span; the SVD picks one.

    Shape: F, F_g (n, d) -> R (d, d), float64, tensor or numpy like the input.
    """
    a, b, is_numpy = _as_float64_pair(F, F_g)
    rotation = _kabsch(a, b, proper)
    return rotation.cpu().numpy() if is_numpy else rotation


def wahba_error(F: Any, F_g: Any, proper: bool = True, normalize: bool = False) -> float:
    """min_R ‖F Rᵀ − F_g‖_F / ‖F_g‖_F over SO(d) (``proper``) or O(d): 0 iff one orthogonal map carries
    every f(x_i) to f(g x_i).

    ``normalize=True`` first scales every row to unit length (the sphere CARE's embeddings live on). The residual is
    evaluated directly, not from the singular values, so an exact fit gives ~1e-15 rather than ~1e-8.

    Shape: F, F_g (n, d) -> float.
    """
    a, b, _ = _as_float64_pair(F, F_g)
    if normalize:
        a, b = _normalise_rows(a), _normalise_rows(b)
    norm = b.norm()
    if norm == 0:
        raise PhotosslError("F_g is all zeros: the relative Wahba error is undefined")
    rotation = _kabsch(a, b, proper)
    return float((a @ rotation.T - b).norm() / norm)
