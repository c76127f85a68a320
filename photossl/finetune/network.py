"""The fine-tuned network: an encoder and a regression head on standardised targets; with an exactly symmetric
encoder and a target that D4 permutes (bands), the head's output is symmetrised so that it is exactly equivariant."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from photossl.errors import PhotosslError
from photossl.finetune.targets import SYMMETRY_NAME, TargetInfo
from photossl.models import RegressionHead, is_exactly_symmetric, orbit_average
from photossl.symmetry import kpoint_permutation_table


class Regressor(nn.Module):
    """Encoder and regression head on standardised targets. Shape: (B, C, N, N) -> (B, out_dim).

    With ``frozen`` the encoder runs without gradients and in eval mode (its batch-norm statistics stay fixed).
    ``output_permutation`` (8, out_dim), for an exactly symmetric encoder and a target that D4 permutes (bands): the
    head runs on the features of each D4 image of the cell and the outputs are mapped back and averaged
    (:func:`photossl.models.orbit_average`), so the output is exactly equivariant rather than invariant.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, frozen: bool = False,
                 output_permutation: torch.Tensor | None = None):
        super().__init__()
        self.encoder, self.head, self.frozen = encoder, head, frozen
        self.register_buffer("output_permutation", output_permutation, persistent=False)
        if frozen:
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> Regressor:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output_permutation is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
                features = self.encoder.orbit_features(x)  # (8, B, feature_dim)
            outputs = self.head(features.flatten(0, 1)).unflatten(0, features.shape[:2])
            return orbit_average(outputs, self.output_permutation)
        if self.frozen:
            with torch.no_grad():
                features = self.encoder(x)
            return self.head(features)
        return self.head(self.encoder(x))


def encoder_spec(name: str, in_channels: int, circular_padding: bool, exact_symmetry: bool = False) -> dict[str, Any]:
    """Keyword arguments of :func:`photossl.models.build_encoder` (as ``photossl.training`` builds encoders)."""
    kwargs: dict[str, Any] = {"in_channels": int(in_channels)}
    if name in ("essl", "small"):
        kwargs["circular_padding"] = bool(circular_padding)
    if exact_symmetry:
        kwargs["exact_symmetry"] = True
    return {"name": name, "kwargs": kwargs}


def output_permutation(encoder: nn.Module, target: TargetInfo) -> torch.Tensor | None:
    """How D4 permutes the flattened target, (8, target.size) long, when ``encoder`` is exactly symmetric and the
    target is 'bands' (k-points permute); None otherwise (invariant targets need no symmetrisation of the head)."""
    if not is_exactly_symmetric(encoder) or SYMMETRY_NAME[target.name] != "bands":
        return None
    if target.kpoints is None or target.shape[0] != len(target.kpoints):
        raise PhotosslError(f"exact symmetry on target '{target.variable}' needs its k-points (K, 2) on axis 0")
    table = kpoint_permutation_table(target.kpoints)  # (8, K); raises if the k-set is not closed under D4
    if any(int(row.unique().numel()) != table.shape[1] for row in table):
        raise PhotosslError("exact symmetry on band targets needs k-points that are distinct modulo the reciprocal "
                            "lattice (each D4 operation must permute them)")
    per_k = target.size // table.shape[1]
    return (table[:, :, None] * per_k + torch.arange(per_k)).reshape(table.shape[0], -1)


def build_head(in_dim: int, out_dim: int, kind: str, dims: list[int]) -> nn.Module:
    if kind == "linear":
        return RegressionHead.linear_probe(in_dim, out_dim)
    return RegressionHead(in_dim, out_dim, hidden_dims=tuple(dims))
