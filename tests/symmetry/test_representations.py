"""The prescribed representations of known-group CARE: orthogonal, homomorphisms, the irreducibles of each group."""

import pytest
import torch

from photossl.errors import PhotosslError
from photossl.symmetry import FINITE_GROUPS, finite_group
from photossl.symmetry.relative import cayley_table
from photossl.symmetry.representations import _GROUP_IRREPS, block_representation, irreducible_matrices


@pytest.mark.parametrize("name", list(FINITE_GROUPS))
@pytest.mark.parametrize("dim", [8, 19, 128])
def test_block_representation_is_an_orthogonal_homomorphism(name, dim):
    group = finite_group(name)
    rep = block_representation(group, dim)
    rho = rep.matrices
    assert rho.shape == (group.order, dim, dim)
    eye = torch.eye(dim, dtype=torch.float64)
    assert torch.allclose(rho[0], eye)
    for g in range(group.order):
        assert torch.allclose(rho[g] @ rho[g].T, eye)
    table = cayley_table(group)
    for g in range(group.order):
        for h in range(group.order):
            assert torch.allclose(rho[g] @ rho[h], rho[table[g, h]])
    assert sum(b.dim for b in rep.blocks) == dim
    assert rep.blocks[0].start == 0 and rep.blocks[0].irrep == _GROUP_IRREPS[name][0]


@pytest.mark.parametrize("name", list(FINITE_GROUPS))
def test_irreducibles_are_distinct_and_irreducible(name):
    # Schur orthogonality over the reals: <χ_i, χ_j> = 0 for i != j; <χ, χ> = 1 for a real irreducible and 2 for
    # the real form of two complex characters (E of the rotations), which the real regular representation holds
    # once; its dimensions add up to |G|.
    group = finite_group(name)
    chars = {irrep: torch.diagonal(irreducible_matrices(group, irrep), dim1=1, dim2=2).sum(dim=1)
             for irrep in _GROUP_IRREPS[name]}
    regular_dim = 0
    for i in chars:
        for j in chars:
            inner = float((chars[i] * chars[j]).sum()) / group.order
            if i != j:
                assert inner == pytest.approx(0.0)
        self_inner = round(float((chars[i] ** 2).sum()) / group.order)
        assert self_inner in (1, 2)
        dim = int(chars[i][0])
        regular_dim += dim * (dim if self_inner == 1 else 1)
    assert regular_dim == group.order


def test_regular_layout_gives_every_irreducible_its_share():
    rep = block_representation(finite_group("d4"), 128)
    sizes = {name: sum(s.stop - s.start for s in slices) for name, slices in rep.irrep_slices().items()}
    assert sizes == {"A1": 16, "A2": 16, "B1": 16, "B2": 16, "E": 64}


def test_too_small_an_embedding_is_refused():
    with pytest.raises(PhotosslError, match="too small"):
        block_representation(finite_group("d4"), 7)
