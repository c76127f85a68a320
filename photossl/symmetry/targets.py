"""How the symmetry operations act on regression targets.

For a cell transformed by g = (s, P, t), i.e. (g·ε)(P r + t) = s·ε(r):
- A Bloch mode ψ(r) = e^{2πi k·r} u(r) of ε maps to ψ(P⁻¹(r − t)), a mode of g·ε with Bloch vector
  P⁻ᵀ k = P k (P orthogonal; k in fractions of the reciprocal vectors, which for the square lattice transform like
  r). Hence bands_{g·ε}(k) = bands_ε(Pᵀ k). The translation only multiplies the mode by a phase.
- ε -> s·ε turns ω²ε into ω'²·sε, so every frequency scales by 1/√s.

Target names:
- 'dos', 'dos_eldiff': SIB-CL-normalised DOS (frequency axis multiplied by √ε̄, values divided by √ε̄):
  invariant.
- 'gaps': dimensionless band gaps (gap-to-midgap ratios): invariant. Absolute gaps are 'frequencies'.
- 'frequencies': any array of raw frequencies (including an unnormalised DOS frequency axis): × 1/√s.
- 'bands': raw band frequencies (..., K, n_bands) on a k-point set (K, 2): k-points permuted, × 1/√s.
"""

from __future__ import annotations

import numpy as np
import torch

from photossl.errors import PhotosslError
from photossl.symmetry.batch import ElementBatch
from photossl.symmetry.elements import D4_MATRICES, IDENTITY_MATRIX, Element
from photossl.symmetry.groups import FiniteGroup

TARGET_NAMES = ("dos", "dos_eldiff", "gaps", "bands", "frequencies")
INVARIANT_TARGETS = ("dos", "dos_eldiff", "gaps")

_MATCH_BLOCK = 1 << 22  # compared k-point pairs per block, bounds the memory of the search


def _as_kpoints(kpoints: torch.Tensor | np.ndarray) -> torch.Tensor:
    k = torch.as_tensor(kpoints, dtype=torch.float64)
    if k.dim() != 2 or k.shape[1] != 2:
        raise PhotosslError(f"k-points must have shape (K, 2), got {tuple(k.shape)}")
    return k


def kpoint_permutation(
    element: Element, kpoints: torch.Tensor | np.ndarray, atol: float = 1e-6
) -> torch.Tensor:
    """Index map perm with bands_{g·ε}[..., i, :] = bands_ε[..., perm[i], :].

    k[perm[i]] equals Pᵀ k[i] up to a reciprocal lattice vector (integers), within ``atol``. Only the point
    operation matters. Composition: perm(g @ h) = perm(h)[perm(g)]. It is a permutation when the k-points are
    distinct modulo reciprocal lattice vectors; with duplicates the first match is used.

    Shape: kpoints (K, 2) in fractions of the reciprocal vectors -> (K,) long on the k-points' device (CPU for
    numpy). Raises ValueError if some Pᵀ k[i] is not in the set.
    """
    k = _as_kpoints(kpoints)
    point = torch.tensor(element.point, dtype=torch.float64, device=k.device)
    if element.point == IDENTITY_MATRIX:
        return torch.arange(k.shape[0], device=k.device)
    images = k @ point  # row i is (Pᵀ k_i)ᵀ
    block = max(1, _MATCH_BLOCK // max(1, k.shape[0]))
    perm = torch.empty(k.shape[0], dtype=torch.long, device=k.device)
    for start in range(0, k.shape[0], block):
        diff = images[start : start + block, None, :] - k[None, :, :]
        match = (diff - diff.round()).abs().amax(-1) <= atol  # (block, K)
        found = match.any(1)
        if not bool(found.all()):
            i = start + int((~found).nonzero()[0])
            raise PhotosslError(
                f"the k-point set is not closed under point operation {element.point}: the image "
                f"{images[i].tolist()} of k[{i}] = {k[i].tolist()} is not in the set (mod reciprocal lattice)"
            )
        perm[start : start + block] = match.to(torch.uint8).argmax(1)
    return perm


def _check_name(target_name: str) -> None:
    if target_name not in TARGET_NAMES:
        raise PhotosslError(f"unknown target '{target_name}' (allowed: {', '.join(TARGET_NAMES)})")


def _index_kpoints(y, perm: torch.Tensor):
    if isinstance(y, np.ndarray):
        return y[..., perm.cpu().numpy(), :]
    return y.index_select(-2, perm.to(y.device))


def transform_target(
    element: Element,
    target_name: str,
    y: torch.Tensor | np.ndarray,
    kpoints: torch.Tensor | np.ndarray | None = None,
):
    """The target of the transformed cell g·ε, given the target y of ε (invariant targets are returned as is).

    Shape: 'bands' y (..., K, n_bands) with kpoints (K, 2); other targets any shape.
    """
    _check_name(target_name)
    if target_name in INVARIANT_TARGETS:
        return y
    factor = float(element.scale) ** -0.5
    if target_name == "bands":
        if element.point != IDENTITY_MATRIX:
            if kpoints is None:
                raise PhotosslError("target 'bands' under a rotation or mirror needs its k-points")
            k = _as_kpoints(kpoints)
            if y.ndim < 2 or y.shape[-2] != k.shape[0]:
                raise PhotosslError(f"bands must have shape (..., K={k.shape[0]}, n_bands), got {tuple(y.shape)}")
            y = _index_kpoints(y, kpoint_permutation(element, k))
    return y * factor if factor != 1 else y


def kpoint_permutation_table(kpoints: torch.Tensor | np.ndarray, atol: float = 1e-6) -> torch.Tensor:
    """(8, K) long: :func:`kpoint_permutation` of every point operation in :data:`D4_MATRICES` label order."""
    return torch.stack([kpoint_permutation(Element(point=p), kpoints, atol) for p in D4_MATRICES])


def transform_target_batch(
    elements: ElementBatch,
    target_name: str,
    y: torch.Tensor,
    kpoints: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Per-sample :func:`transform_target`: sample b transformed by elements[b].

    Shape: y (B, ...); 'bands' y (B, K, n_bands) with kpoints (K, 2).
    """
    _check_name(target_name)
    if target_name in INVARIANT_TARGETS:
        return y
    if y.shape[0] != len(elements):
        raise PhotosslError(f"{len(elements)} elements for a target batch of {y.shape[0]}")
    if target_name == "bands":
        point_labels = elements.point_labels().to(y.device)
        if bool((point_labels != 0).any()):
            if kpoints is None:
                raise PhotosslError("target 'bands' under a rotation or mirror needs its k-points")
            table = kpoint_permutation_table(kpoints).to(y.device)
            if y.dim() != 3 or y.shape[1] != table.shape[1]:
                raise PhotosslError(f"bands must have shape (B, K={table.shape[1]}, n_bands), got {tuple(y.shape)}")
            perm = table[point_labels]  # (B, K)
            y = y.gather(1, perm[:, :, None].expand(y.shape))
    if elements.scale is None:
        return y
    factor = elements.scale.to(device=y.device, dtype=y.dtype) ** -0.5
    return y * factor.reshape((-1,) + (1,) * (y.dim() - 1))


def transform_target_labels(
    group: FiniteGroup,
    labels: torch.Tensor,
    target_name: str,
    y: torch.Tensor,
    kpoints: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Per-sample :func:`transform_target` for elements given as group labels (B,)."""
    _check_name(target_name)
    if target_name in INVARIANT_TARGETS:
        return y
    elements = ElementBatch(
        point=torch.tensor([e.point for e in group], dtype=torch.long, device=y.device)[labels.to(y.device)],
        shift=torch.zeros(labels.shape[0], 2, dtype=torch.long, device=y.device),  # bands ignore translations
        scale=None
        if all(e.scale == 1 for e in group)
        else torch.tensor([float(e.scale) for e in group], dtype=torch.float64, device=y.device)[labels.to(y.device)],
        size=1,
    )
    return transform_target_batch(elements, target_name, y, kpoints)
