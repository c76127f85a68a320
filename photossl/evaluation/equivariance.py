"""How embeddings respond to a transformation g of the inputs: invariance, CARE's γ_f, and group consistency.

Embeddings are rows: ``z`` (n, d) holds f(x_i), ``z_g`` (n, d) holds f(g x_i). Inputs may be torch tensors or
numpy arrays; everything is computed in float64 on the input's device.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from photossl.errors import PhotosslError
from photossl.evaluation.wahba import wahba_rotation


def _float64(x: Any, device: torch.device | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device=device or x.device, dtype=torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)


def _pair(z: Any, z_g: Any) -> tuple[torch.Tensor, torch.Tensor]:
    device = next((t.device for t in (z, z_g) if isinstance(t, torch.Tensor)), None)
    a, b = _float64(z, device), _float64(z_g, device)
    if a.dim() != 2 or a.shape != b.shape:
        raise PhotosslError(f"z and z_g must both be (n, d) of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    if a.shape[0] < 2:
        raise PhotosslError(f"need at least 2 samples to form pairs (x, x'), got n = {a.shape[0]}")
    return a, b


def _squared_distances(z: torch.Tensor) -> torch.Tensor:
    gram = z @ z.T
    sq = gram.diagonal()
    return (sq[:, None] + sq[None, :] - 2 * gram).clamp_min(0)


def invariance_error(z: Any, z_g: Any) -> float:
    """mean_i ‖f(g x_i) − f(x_i)‖ / mean_{i≠j} ‖f(x_i) − f(x_j)‖: how far g moves an embedding compared
    with the typical distance between two cells. 0 for an invariant f; about 1 when g moves embeddings as far as
    changing the cell does.

    A ratio of means (not a mean of ratios), so a few nearly coincident pairs x, x′ cannot blow it up.

    Shape: z, z_g (n, d), n >= 2 -> float.
    """
    a, b = _pair(z, z_g)
    moved = (b - a).norm(dim=1).mean()
    n = a.shape[0]
    spread = torch.cdist(a, a).sum() / (n * (n - 1))
    if spread == 0:
        raise PhotosslError("all embeddings f(x_i) coincide: the invariance error is undefined")
    return float(moved / spread)


def relative_rotational_equivariance(z: Any, z_g: Any, rtol: float = 1e-8) -> float:
    """CARE's relative rotational equivariance for one transformation g (Gupta et al. 2023, §4):

        γ = E_{x≠x′} (‖f(gx′) − f(gx)‖² − ‖f(x′) − f(x)‖²)²
        / (‖f(gx′) − f(x′)‖² + ‖f(gx) − f(x)‖²)²,

    the change in pairwise distances caused by g, relative to how far g moves the points; CARE's γ_f is the mean of
    this over g. 0 when g acts on the embeddings as an orthogonal map (distances kept) that moves them; large when g
    moves points a little but not rigidly. Pairs that g leaves in place (denominator below ``rtol`` times the mean
    squared pair distance) give 0/0 and are left out; if every pair is, f is invariant and the result is nan.
    The expectation runs over all unordered pairs i < j of the sample (memory O(n²)).

    Shape: z, z_g (n, d), n >= 2 -> float.
    """
    if not rtol >= 0:
        raise PhotosslError(f"rtol must be >= 0, got {rtol!r}")
    a, b = _pair(z, z_g)
    n = a.shape[0]
    dist, dist_g = _squared_distances(a), _squared_distances(b)
    moved = ((b - a) ** 2).sum(dim=1)
    numerator = (dist_g - dist) ** 2
    denominator_root = moved[:, None] + moved[None, :]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=a.device), diagonal=1)
    scale = dist[upper].mean()
    keep = upper & (denominator_root > rtol * scale)
    if not bool(keep.any()):
        return float("nan")
    return float((numerator[keep] / denominator_root[keep] ** 2).mean())


class OrbitFit(NamedTuple):
    """Orthogonal maps fitted to a finite group's action on embeddings, in the span of the orbit embeddings.

    rotations: (G, k, k) float64, R_g for every group label g.
    basis: (d, k) float64 orthonormal columns spanning the orbit embeddings (coordinates = embeddings @ basis).
    points: (G·n, k) float64, the orbit embeddings in that basis (the data the fit used).
    """

    rotations: torch.Tensor
    basis: torch.Tensor
    points: torch.Tensor


def _check_products(products: Any, order: int, device: torch.device) -> torch.Tensor:
    table = torch.as_tensor(np.asarray(products), dtype=torch.long, device=device)
    if table.shape != (order, order) or bool((table < 0).any()) or bool((table >= order).any()):
        raise PhotosslError(f"products must be a ({order}, {order}) table of labels in 0..{order - 1}")
    return table


def fit_orbit_rotations(orbits: Any, products: Any, proper: bool = False, rtol: float = 1e-5) -> OrbitFit:
    """Fit R_g (orthogonal) to every pair (f(h x_i), f(g h x_i)) over all h in the group and all cells i.

    Pooling the whole orbit uses every observed constraint: the targets are the source rows permuted, and the span
    of the orbit embeddings is invariant under a true representation, so R_g is determined on it (k = numerical
    rank of the orbit embeddings, singular values above ``rtol`` times the largest) even when n < d.
    ``proper=False`` (default) fits in O(k): representations of finite groups may contain reflections (permutation
    representations do), and requiring det +1 would call a true representation inconsistent.

    Shape: orbits (G, n, d) with orbits[l, i] = f(g_l x_i); products (G, G) with products[g, h] = label of g∘h
    (h acting first) -> :class:`OrbitFit`.
    """
    z = _float64(orbits)
    if z.dim() != 3:
        raise PhotosslError(f"orbits must be (G, n, d), got shape {tuple(z.shape)}")
    order, n, d = z.shape
    table = _check_products(products, order, z.device)
    flat = z.reshape(order * n, d)
    _, singular, vh = torch.linalg.svd(flat, full_matrices=False)
    if singular[0] == 0:
        raise PhotosslError("all orbit embeddings are zero: no rotations can be fitted")
    rank = int((singular > rtol * singular[0]).sum())
    basis = vh[:rank].T
    coords = z @ basis  # (G, n, k)
    source = coords.reshape(order * n, rank)
    rotations = torch.stack(
        [wahba_rotation(source, coords[table[g]].reshape(order * n, rank), proper) for g in range(order)]
    )
    return OrbitFit(rotations, basis, source)


def composition_errors(rotations: Any, products: Any, points: Any = None) -> np.ndarray:
    """How far the fitted maps are from composing like the group, for every pair (g, h).

    Without ``points``: ‖R_g R_h − R_{g∘h}‖_F / √k (root-mean-square over the k directions; 0 for a
    representation, at most 2). With ``points`` (m, k): ‖(R_g R_h − R_{g∘h}) Pᵀ‖_F / ‖P‖_F, weighting
    directions by how much of the data lies along them, so directions the embeddings hardly use (where R is poorly
    determined) do not dominate.

    Shape: rotations (G, k, k), products (G, G) -> (G, G) numpy float64.
    """
    r = _float64(rotations)
    if r.dim() != 3 or r.shape[1] != r.shape[2]:
        raise PhotosslError(f"rotations must be (G, k, k), got shape {tuple(r.shape)}")
    order, k = r.shape[0], r.shape[1]
    table = _check_products(products, order, r.device)
    diff = torch.einsum("gab,hbc->ghac", r, r) - r[table]  # (G, G, k, k)
    if points is None:
        return (diff.flatten(2).norm(dim=2) / k**0.5).cpu().numpy()
    p = _float64(points, r.device)
    if p.dim() != 2 or p.shape[1] != k:
        raise PhotosslError(f"points must be (m, {k}) to match the rotations, got shape {tuple(p.shape)}")
    return ((diff @ p.T).flatten(2).norm(dim=2) / p.norm()).cpu().numpy()
