"""Per-sample symmetry elements of a batch, held as tensors on the batch's device."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import torch

from photossl.errors import PhotosslError
from photossl.symmetry.elements import D4_MATRICES, Element
from photossl.symmetry.pixel_action import apply_elements


@dataclass(frozen=True)
class ElementBatch:
    """One element per sample on an N×N grid: r -> point·r + shift (pixels), ε -> scale·ε.

    Attributes:
        point: (B, 2, 2) long, each one of :data:`D4_MATRICES`.
        shift: (B, 2) long pixel translations in [0, size).
        scale: (B,) float64, or None when every scale is 1.
        size: the grid size N the shifts refer to.
    """

    point: torch.Tensor
    shift: torch.Tensor
    scale: torch.Tensor | None
    size: int

    def __post_init__(self) -> None:
        b = self.point.shape[0] if self.point.dim() == 3 else -1
        if self.point.shape != (b, 2, 2) or self.shift.shape != (b, 2):
            raise PhotosslError(
                f"point must be (B, 2, 2) and shift (B, 2); got {tuple(self.point.shape)}, {tuple(self.shift.shape)}"
            )
        if self.scale is not None and self.scale.shape != (b,):
            raise PhotosslError(f"scale must be (B,) = ({b},), got {tuple(self.scale.shape)}")
        object.__setattr__(self, "shift", self.shift.remainder(self.size))

    @classmethod
    def identity(cls, batch_size: int, size: int, device: torch.device | str | None = None) -> ElementBatch:
        point = torch.eye(2, dtype=torch.long, device=device).expand(batch_size, 2, 2).clone()
        return cls(point, torch.zeros(batch_size, 2, dtype=torch.long, device=device), None, size)

    @classmethod
    def from_elements(
        cls, elements: Sequence[Element], size: int, device: torch.device | str | None = None
    ) -> ElementBatch:
        """Stack elements; each translation must be a whole number of pixels on the ``size`` grid."""
        point = torch.tensor([e.point for e in elements], dtype=torch.long, device=device).reshape(-1, 2, 2)
        shift = torch.tensor([e.pixel_shift(size) for e in elements], dtype=torch.long, device=device).reshape(-1, 2)
        scales = [float(e.scale) for e in elements]
        scale = None if all(s == 1 for s in scales) else torch.tensor(scales, dtype=torch.float64, device=device)
        return cls(point, shift, scale, size)

    def __len__(self) -> int:
        return self.point.shape[0]

    @property
    def device(self) -> torch.device:
        return self.point.device

    def to(self, device: torch.device | str) -> ElementBatch:
        scale = None if self.scale is None else self.scale.to(device)
        return ElementBatch(self.point.to(device), self.shift.to(device), scale, self.size)

    def element(self, i: int) -> Element:
        """Sample i's element; point and shift are exact, the scale is the float64 value held."""
        scale = 1 if self.scale is None else Fraction(float(self.scale[i]))
        shift = tuple(Fraction(int(v), self.size) for v in self.shift[i].tolist())
        return Element(point=tuple(map(tuple, self.point[i].tolist())), shift=shift, scale=scale)

    def point_labels(self) -> torch.Tensor:
        """(B,) long: index of each sample's point operation in :data:`D4_MATRICES`."""
        table = torch.tensor(D4_MATRICES, dtype=torch.long, device=self.device)  # (8, 2, 2)
        return (self.point[:, None] == table[None]).flatten(2).all(-1).long().argmax(1)

    def scales(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """(B,) scale of every sample (ones when ``scale`` is None)."""
        if self.scale is None:
            return torch.ones(len(self), dtype=dtype, device=self.device)
        return self.scale.to(dtype)

    def __matmul__(self, other: ElementBatch) -> ElementBatch:
        """Per-sample composition (self[b] @ other[b]): other acts first."""
        if not isinstance(other, ElementBatch):
            return NotImplemented
        if other.size != self.size or len(other) != len(self):
            raise PhotosslError(
                f"cannot compose element batches of sizes {len(self)}@{self.size} and {len(other)}@{other.size}"
            )
        other = other.to(self.device)
        point = (self.point[:, :, :, None] * other.point[:, None, :, :]).sum(2)
        shift = (self.point * other.shift[:, None, :]).sum(-1) + self.shift
        if self.scale is None and other.scale is None:
            scale = None
        else:
            scale = self.scales() * other.scales()
        return ElementBatch(point, shift, scale, self.size)

    def inverse(self) -> ElementBatch:
        inv = self.point.transpose(1, 2)
        shift = -(inv * self.shift[:, None, :]).sum(-1)
        scale = None if self.scale is None else 1 / self.scale
        return ElementBatch(inv.contiguous(), shift, scale, self.size)

    def apply(self, x: torch.Tensor, eps_normalisation: tuple[float, float] | None = None) -> torch.Tensor:
        """Sample b becomes element b applied to x[b]. Shape: (B, ..., N, N) -> (B, ..., N, N)."""
        if x.shape[-1] != self.size:
            raise PhotosslError(f"elements were drawn for a {self.size}×{self.size} grid, got cells {tuple(x.shape)}")
        return apply_elements(x, self.point, self.shift, self.scale, eps_normalisation)
