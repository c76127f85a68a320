"""Finite symmetry groups with integer labels, acting on batches with per-sample labels.

Labels follow the E-SSL photonics code where it has a convention:
- ``Rot4``: k -> k quarter turns about pixel 0 (torch.rot90(x, k, dims=(-2, -1)) up to a translation).
- ``Flips``: 0 identity, 1 mirror x (reverses axis -2), 2 mirror y (reverses axis -1), 3 both (= half turn).
- ``HalfTranslations``: 2a + b -> shift (a·N/2, b·N/2) pixels: (0, 0), (0, N/2), (N/2, 0), (N/2, N/2).
- ``D4``: k + 4f -> R^k m_x^f: 0-3 rotations, 4 mirror x, 5 antidiagonal, 6 mirror y, 7 diagonal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction

import torch

from photossl.errors import PhotosslError
from photossl.symmetry.batch import ElementBatch
from photossl.symmetry.elements import D4_MATRICES, Element
from photossl.symmetry.pixel_action import gather_pixels, grid_size, scale_values, source_index


def draw_labels(
    order: int,
    batch_size: int,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(batch_size,) uniform labels in [0, order); with ``chunk_size`` each run of that many consecutive samples
    shares one label (the last chunk may be shorter)."""
    n_draws = _n_draws(batch_size, chunk_size)
    labels = torch.randint(order, (n_draws,), generator=generator, device=_draw_device(generator))
    return repeat_chunks(labels, batch_size, chunk_size).to(device if device is not None else labels.device)


def repeat_chunks(draws: torch.Tensor, batch_size: int, chunk_size: int | None) -> torch.Tensor:
    """Expand one draw per chunk to one per sample along dim 0 (identity when ``chunk_size`` is None)."""
    if chunk_size is None:
        return draws
    return draws.repeat_interleave(chunk_size, dim=0)[:batch_size]


def _n_draws(batch_size: int, chunk_size: int | None) -> int:
    if batch_size < 0:
        raise PhotosslError(f"batch_size must be >= 0, got {batch_size}")
    if chunk_size is None:
        return batch_size
    if chunk_size < 1:
        raise PhotosslError(f"chunk_size must be >= 1, got {chunk_size}")
    return -(-batch_size // chunk_size)


def _draw_device(generator: torch.Generator | None) -> torch.device:
    # Random numbers are drawn where the generator lives, then moved, so a CPU generator drives a CUDA batch.
    return generator.device if generator is not None else torch.device("cpu")


class FiniteGroup:
    """A finite group of :class:`Element` with labels 0..order−1 (label 0 is the identity).

    Acts on cells (B, C, N, N) on their own device; per-sample labels need one gather, not a loop.
    """

    def __init__(self, name: str, elements: Sequence[Element]) -> None:
        elements = tuple(elements)
        if not elements or elements[0] != Element():
            raise PhotosslError(f"group '{name}' must list the identity first")
        if len(set(elements)) != len(elements):
            raise PhotosslError(f"group '{name}' lists an element twice")
        members = set(elements)
        if any(g @ h not in members for g in elements for h in elements):
            raise PhotosslError(f"the elements of group '{name}' are not closed under composition")
        self.name = name
        self.elements = elements
        self._labels = {e: i for i, e in enumerate(elements)}
        # Per (grid size, device): the elements as tensors and their pixel index table, built on first use.
        self._cache: dict[tuple[int, torch.device], tuple[ElementBatch, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.elements)

    @property
    def order(self) -> int:
        return len(self.elements)

    def __iter__(self) -> Iterator[Element]:
        return iter(self.elements)

    def __contains__(self, element: object) -> bool:
        return element in self._labels

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, order={self.order})"

    def element(self, label: int) -> Element:
        if not 0 <= label < self.order:
            raise PhotosslError(f"label {label} is outside 0..{self.order - 1} of group '{self.name}'")
        return self.elements[label]

    def label(self, element: Element) -> int:
        try:
            return self._labels[element]
        except KeyError:
            raise PhotosslError(f"{element!r} is not in group '{self.name}'") from None

    def _tensors(self, size: int, device: torch.device | str | None) -> tuple[ElementBatch, torch.Tensor]:
        key = (size, torch.device(device) if device is not None else torch.device("cpu"))
        if key not in self._cache:
            elements = ElementBatch.from_elements(self.elements, size, key[1])
            self._cache[key] = (elements, source_index(elements.point, elements.shift, size))
        return self._cache[key]

    def index_table(self, size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """(order, N²) long: source pixel of each output pixel for every element."""
        return self._tensors(size, device)[1]

    def batch(self, labels: torch.Tensor, size: int) -> ElementBatch:
        """The elements of per-sample ``labels`` (B,) as an :class:`ElementBatch` on the labels' device."""
        table = self._tensors(size, labels.device)[0]
        scale = None if table.scale is None else table.scale[labels]
        return ElementBatch(table.point[labels], table.shift[labels], scale, size)

    def _scales(self, size: int, device: torch.device) -> torch.Tensor | None:
        return self._tensors(size, device)[0].scale

    def apply(self, x: torch.Tensor, label: int, eps_normalisation: tuple[float, float] | None = None) -> torch.Tensor:
        """One element on every cell. Shape: (..., N, N) -> (..., N, N)."""
        return self.element(label).apply(x, eps_normalisation)

    def apply_labels(
        self, x: torch.Tensor, labels: torch.Tensor, eps_normalisation: tuple[float, float] | None = None
    ) -> torch.Tensor:
        """Sample b becomes element labels[b] applied to x[b]. Shape: x (B, ..., N, N), labels (B,) -> like x."""
        size = grid_size(x)
        if x.dim() < 3 or labels.shape != (x.shape[0],):
            raise PhotosslError(f"labels must have shape (B,) for x (B, ..., N, N); got {tuple(labels.shape)}")
        labels = labels.to(device=x.device, dtype=torch.long)
        out = gather_pixels(x, self.index_table(size, x.device)[labels])
        scales = self._scales(size, x.device)
        if scales is not None:
            out = scale_values(out, scales[labels], eps_normalisation)
        return out

    def expand(
        self, x: torch.Tensor, eps_normalisation: tuple[float, float] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every element applied to every cell, group-major (as E-SSL concatenates its transformed batches).

        Shape: x (B, ..., N, N) -> views (order·B, ..., N, N) with views[l·B + b] = element(l)·x[b], and labels
        (order·B,) long.
        """
        size = grid_size(x)
        batch = x.shape[0]
        table = self.index_table(size, x.device)  # (G, N²)
        flat = x.flatten(-2)
        if x.requires_grad:  # out= does not record gradients
            views = torch.stack([flat.index_select(-1, row) for row in table])
        else:
            views = flat.new_empty((self.order,) + flat.shape)
            for label in range(self.order):  # |G| <= 8 whole-batch copies, written in place group-major
                torch.index_select(flat, -1, table[label], out=views[label])
        views = views.reshape((self.order * batch,) + x.shape[1:])
        labels = torch.arange(self.order, device=x.device).repeat_interleave(batch)
        scales = self._scales(size, x.device)
        if scales is not None:
            views = scale_values(views, scales[labels], eps_normalisation)
        return views, labels

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """(batch_size,) uniform random labels; with ``chunk_size`` one label per chunk of consecutive samples."""
        return draw_labels(self.order, batch_size, generator, chunk_size, device)


def _rotations() -> list[Element]:
    return [Element.rotation(k) for k in range(4)]


class Rot4(FiniteGroup):
    """The four rotations about pixel 0; label k = k quarter turns."""

    def __init__(self) -> None:
        super().__init__("rot4", _rotations())


class Flips(FiniteGroup):
    """Axis mirrors about pixel 0 and their product: identity, mirror x, mirror y, half turn (labels 0-3)."""

    def __init__(self) -> None:
        mx, my = Element.mirror("x"), Element.mirror("y")
        super().__init__("flip", [Element(), mx, my, mx @ my])


class D4(FiniteGroup):
    """All eight point operations of the square lattice; label k + 4f = R^k m_x^f."""

    def __init__(self) -> None:
        super().__init__("d4", [Element(point=p) for p in D4_MATRICES])


class HalfTranslations(FiniteGroup):
    """Z2×Z2 of half-cell translations; label 2a + b = shift (a/2, b/2) of the lattice vectors (needs even N)."""

    def __init__(self) -> None:
        half = Fraction(1, 2)
        super().__init__("half_translate", [Element(shift=(a * half, b * half)) for a in range(2) for b in range(2)])


FINITE_GROUPS: dict[str, type[FiniteGroup]] = {
    "rot4": Rot4,
    "flip": Flips,
    "d4": D4,
    "half_translate": HalfTranslations,
}


def finite_group(name: str) -> FiniteGroup:
    """The finite group called ``name`` (one of :data:`FINITE_GROUPS`)."""
    if name not in FINITE_GROUPS:
        raise PhotosslError(f"unknown finite group '{name}' (allowed: {', '.join(FINITE_GROUPS)})")
    return FINITE_GROUPS[name]()
