"""Real orthogonal representations of the finite cell groups, built as block sums of their irreducibles.

The irreducibles of D4 over the reals: A1 (trivial), A2 (det P), B1 (−1 for the operations that swap the axes),
B2 (A2·B1) and E (the 2×2 matrix P itself). Restricted to ``rot4`` they give A (A1, A2), B (B1, B2) and E; to
``flip`` (abelian) the four characters of its two mirrors. ``half_translate`` has the four characters
(−1)^(2(p t_x + q t_y)). :func:`block_representation` stacks copies of them the way the real regular
representation does, so every irreducible gets a share of the embedding; the
trivial block, the part a group-invariant readout sees, comes first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from photossl.errors import PhotosslError
from photossl.symmetry.elements import Element
from photossl.symmetry.groups import FiniteGroup


def _swaps_axes(g: Element) -> bool:
    return g.point[0][0] == 0


def _det(g: Element) -> int:
    p = g.point
    return p[0][0] * p[1][1] - p[0][1] * p[1][0]


def _sign(value: bool) -> float:
    return -1.0 if value else 1.0


# name -> (dimension, element -> matrix as nested lists)
_POINT_IRREPS = {
    "A1": (1, lambda g: [[1.0]]),
    "A2": (1, lambda g: [[float(_det(g))]]),
    "B1": (1, lambda g: [[_sign(_swaps_axes(g))]]),
    "B2": (1, lambda g: [[float(_det(g)) * _sign(_swaps_axes(g))]]),
    "E": (2, lambda g: [[float(v) for v in row] for row in g.point]),
}
_FLIP_IRREPS = {
    "A": (1, lambda g: [[1.0]]),
    "Bx": (1, lambda g: [[_sign(g.point[0][0] < 0)]]),
    "By": (1, lambda g: [[_sign(g.point[1][1] < 0)]]),
    "Bxy": (1, lambda g: [[float(_det(g))]]),
}
_HALF_IRREPS = {
    f"chi{p}{q}": (1, lambda g, p=p, q=q: [[_sign(int(2 * (p * g.shift[0] + q * g.shift[1])) % 2 == 1)]])
    for p in range(2)
    for q in range(2)
}
# Irreducibles per group (restrictions of D4's are deduplicated: A2 ≅ A1 and B2 ≅ B1 on the rotations).
_GROUP_IRREPS = {
    "d4": ("A1", "A2", "B1", "B2", "E"),
    "rot4": ("A1", "B1", "E"),
    "flip": ("A", "Bx", "By", "Bxy"),
    "half_translate": ("chi00", "chi01", "chi10", "chi11"),
}
# How often each irreducible occurs in the real regular representation: its dimension, except for E on the
# rotations, a real form of two complex characters, which occurs once.
_REGULAR_MULTIPLICITY = {("d4", "E"): 2}
_ALL_IRREPS = {**_POINT_IRREPS, **_FLIP_IRREPS, **_HALF_IRREPS}


@dataclass(frozen=True)
class Block:
    """One copy of an irreducible in the embedding: coordinates ``start:start + dim``."""

    irrep: str
    start: int
    dim: int


@dataclass(frozen=True)
class Representation:
    """ρ(g) for every label g of ``group_name``: ``matrices`` (G, D, D) orthogonal, block diagonal per ``blocks``."""

    group_name: str
    matrices: torch.Tensor
    blocks: tuple[Block, ...]

    @property
    def dim(self) -> int:
        return int(self.matrices.shape[-1])

    def irrep_slices(self) -> dict[str, list[slice]]:
        """The coordinate ranges of every copy of each irreducible."""
        out: dict[str, list[slice]] = {}
        for block in self.blocks:
            out.setdefault(block.irrep, []).append(slice(block.start, block.start + block.dim))
        return out


def irreducible_matrices(group: FiniteGroup, irrep: str) -> torch.Tensor:
    """(G, d, d) float64 matrices of irreducible ``irrep`` of ``group`` in label order."""
    if group.name not in _GROUP_IRREPS or irrep not in _GROUP_IRREPS[group.name]:
        allowed = ", ".join(_GROUP_IRREPS.get(group.name, ()))
        raise PhotosslError(f"group '{group.name}' has no irreducible '{irrep}' (known: {allowed or 'none'})")
    _, matrix = _ALL_IRREPS[irrep]
    return torch.tensor([matrix(g) for g in group], dtype=torch.float64)


def block_representation(group: FiniteGroup, dim: int) -> Representation:
    """An orthogonal representation of ``group`` on R^dim: k copies of the regular representation's irreducible
    content with k = dim // |G|, the dimensions left over given to the trivial one."""
    if group.name not in _GROUP_IRREPS:
        raise PhotosslError(f"no representation is known for group '{group.name}' "
                            f"(known: {', '.join(_GROUP_IRREPS)})")
    copies = dim // group.order
    if copies < 1:
        raise PhotosslError(f"an embedding of {dim} dimensions is too small for group '{group.name}': it needs at "
                            f"least {group.order}")
    names = _GROUP_IRREPS[group.name]
    layout = [names[0]] * (copies + dim - copies * group.order)
    for name in names[1:]:
        layout += [name] * (copies * _REGULAR_MULTIPLICITY.get((group.name, name), 1))
    matrices = torch.zeros(group.order, dim, dim, dtype=torch.float64)
    blocks, start = [], 0
    irreps = {name: irreducible_matrices(group, name) for name in names}
    for name in layout:
        d = _ALL_IRREPS[name][0]
        matrices[:, start:start + d, start:start + d] = irreps[name]
        blocks.append(Block(name, start, d))
        start += d
    return Representation(group.name, matrices, tuple(blocks))
