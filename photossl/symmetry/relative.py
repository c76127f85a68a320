"""Relative transformations between two views, scored up to the symmetry of the cell they start from.

A view pair (x_a, x_b) with x_b = g·x_a has the relative label g. When x_a has its own symmetry (s·x_a = x_a for s
in its stabiliser S), x_b = (g s)·x_a as well, so every element of the left coset gS is a right answer: the label
is a set, held as a (B, G) boolean mask.
"""

from __future__ import annotations

import torch

from photossl.errors import PhotosslError
from photossl.symmetry.groups import FiniteGroup


def cayley_table(group: FiniteGroup) -> torch.Tensor:
    """(G, G) long: ``table[i, j]`` is the label of element(i) @ element(j) (j acts first)."""
    return torch.tensor([[group.label(g @ h) for h in group] for g in group], dtype=torch.long)


def inverse_labels(group: FiniteGroup) -> torch.Tensor:
    """(G,) long: the label of each element's inverse."""
    return torch.tensor([group.label(g.inverse()) for g in group], dtype=torch.long)


def relative_labels(group: FiniteGroup, labels_a: torch.Tensor, labels_b: torch.Tensor) -> torch.Tensor:
    """Labels of g_b g_a⁻¹, the element taking x_a = g_a·x to x_b = g_b·x. Shape: (B,), (B,) -> (B,) long."""
    if labels_a.shape != labels_b.shape:
        raise PhotosslError(f"label shapes differ: {tuple(labels_a.shape)} and {tuple(labels_b.shape)}")
    table = cayley_table(group).to(labels_a.device)
    inverse = inverse_labels(group).to(labels_a.device)
    return table[labels_b.long(), inverse[labels_a.long()]]


def stabiliser_mask(group: FiniteGroup, x: torch.Tensor, modulo_translations: bool, atol: float = 1e-6) -> torch.Tensor:
    """Which elements map each cell onto itself: (B, G) bool, column 0 (the identity) always True.

    ``modulo_translations``: also count s with s·x equal to x up to a periodic roll (when the features are made
    invariant to translations, such an s cannot be seen). Compared in float64 on the cells' pixels: exact for the
    two-valued cells the generators make.

    Shape: x (B, C, N, N) -> (B, G).
    """
    if x.dim() != 4:
        raise PhotosslError(f"cells must have shape (B, C, N, N), got {tuple(x.shape)}")
    cells = x.detach().to("cpu", torch.float64)
    views, _ = group.expand(cells)  # (G·B, C, N, N), group-major
    views = views.reshape(group.order, *cells.shape)
    scale = cells.abs().flatten(1).amax(dim=1).clamp_min(1e-12)  # (B,)
    if not modulo_translations:
        diff = (views - cells.unsqueeze(0)).abs().flatten(2).amax(dim=2)  # (G, B)
        return (diff <= atol * scale).T.contiguous().to(x.device)
    # ‖s·x − roll(x)‖² is smallest at the peak of the periodic cross-correlation; zero there means a match.
    spectrum = torch.fft.fft2(cells)
    correlation = torch.fft.ifft2(spectrum.unsqueeze(0) * torch.fft.fft2(views).conj()).real.sum(dim=2)
    peak = correlation.flatten(2).amax(dim=2)  # (G, B)
    norm = cells.pow(2).flatten(1).sum(dim=1)  # both have the same norm: point operations permute pixels
    distance = (2 * norm.unsqueeze(0) - 2 * peak).clamp_min(0)
    return (distance <= (atol * scale) ** 2 * cells[0].numel()).T.contiguous().to(x.device)


def coset_mask(group: FiniteGroup, labels: torch.Tensor, stabiliser: torch.Tensor) -> torch.Tensor:
    """The right answers for x_b = g·x_a: every label of g s with s in the stabiliser of x_a.

    Shape: labels (B,) long, stabiliser (B, G) bool -> (B, G) bool.
    """
    if stabiliser.shape != (labels.shape[0], group.order):
        raise PhotosslError(f"stabiliser must have shape ({labels.shape[0]}, {group.order}), got "
                            f"{tuple(stabiliser.shape)}")
    table = cayley_table(group).to(labels.device)
    products = table[labels.long()]  # (B, G): label of g @ s for every s
    mask = torch.zeros_like(stabiliser)
    return mask.scatter_(1, products, stabiliser)
