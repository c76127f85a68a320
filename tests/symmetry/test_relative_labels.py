"""Relative transformation labels, cell stabilisers and the cosets of right answers."""

import numpy as np
import pytest
import torch

from photossl.physics.cells import fourier_level_set_cell, holes_cell, rods_cell
from photossl.physics.kpoints import cell_point_group
from photossl.symmetry import D4, FINITE_GROUPS, Element, HalfTranslations, Rot4, finite_group
from photossl.symmetry.relative import cayley_table, coset_mask, relative_labels, stabiliser_mask


@pytest.mark.parametrize("name", list(FINITE_GROUPS))
def test_relative_label_takes_the_first_view_to_the_second(name):
    group = finite_group(name)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    la, lb = torch.meshgrid(torch.arange(group.order), torch.arange(group.order), indexing="ij")
    la, lb = la.reshape(-1), lb.reshape(-1)
    rel = relative_labels(group, la, lb)
    for a, b, r in zip(la.tolist(), lb.tolist(), rel.tolist()):
        xa, xb = group.apply(x, a), group.apply(x, b)
        assert torch.equal(group.apply(xa, r), xb)


def test_relative_label_of_composed_transformations():
    group = D4()
    # x_a = m_x · R, x_b = R² · m_x · R  ->  relative R².
    rot, mirror = Element.rotation(1), Element.mirror("x")
    ga, gb = mirror @ rot, Element.rotation(2) @ mirror @ rot
    rel = relative_labels(group, torch.tensor([group.label(ga)]), torch.tensor([group.label(gb)]))
    assert group.element(int(rel)) == Element.rotation(2)


def test_cayley_table_is_a_latin_square_with_identity_row():
    table = cayley_table(D4())
    assert torch.equal(table[0], torch.arange(8))
    for row in table:
        assert sorted(row.tolist()) == list(range(8))


def _d4_labels_of(matrices):
    group = D4()
    return sorted(group.label(Element(point=tuple(map(tuple, m.astype(int).tolist())))) for m in matrices)


@pytest.mark.parametrize("plane_group", ["p1", "p2", "pm", "p4", "p4m", "cmm"])
def test_stabiliser_matches_the_detected_point_group(plane_group):
    eps = np.stack([fourier_level_set_cell(seed, group=plane_group).eps for seed in range(3)])
    mask = stabiliser_mask(D4(), torch.as_tensor(eps)[:, None], modulo_translations=True)
    for cell, row in zip(eps, mask):
        assert torch.nonzero(row).flatten().tolist() == _d4_labels_of(cell_point_group(cell))


def test_rods_and_holes_are_fixed_by_every_point_operation():
    eps = torch.as_tensor(np.stack([rods_cell(), holes_cell()]))[:, None]
    assert stabiliser_mask(D4(), eps, modulo_translations=True).all()
    # Off pixel 0 a rod is not where it was after a rotation about pixel 0; only a roll brings it back.
    shifted = torch.roll(eps, (3, 5), dims=(-2, -1))
    assert stabiliser_mask(D4(), shifted, modulo_translations=True).all()
    assert stabiliser_mask(D4(), shifted, modulo_translations=False).sum(dim=1).tolist() == [1, 1]


def test_half_translations_are_compared_exactly():
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 0, 0] = x[0, 0, 4, 0] = 1.0  # period 4 along x
    x[1, 0, 1, 2] = 1.0
    mask = stabiliser_mask(HalfTranslations(), x, modulo_translations=False)
    assert mask.tolist() == [[True, False, True, False], [True, False, False, False]]


def test_coset_of_a_symmetric_cell_holds_every_indistinguishable_answer():
    group = Rot4()
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 0, 0] = 1.0  # a point at the rotation centre: fixed by every rotation
    x[1, 0, 1, 0] = x[1, 0, 0, 2] = 1.0  # no rotation symmetry
    stab = stabiliser_mask(group, x, modulo_translations=False)
    labels = torch.tensor([1, 3])
    correct = coset_mask(group, labels, stab)
    assert correct[0].all()
    assert correct[1].tolist() == [False, False, False, True]
    # A cell with a half-turn axis: g and g·R² cannot be told apart.
    y = torch.zeros(1, 1, 8, 8)
    y[0, 0, 1, 1] = y[0, 0, 7, 7] = 1.0
    stab = stabiliser_mask(group, y, modulo_translations=False)
    assert stab[0].tolist() == [True, False, True, False]
    assert coset_mask(group, torch.tensor([1]), stab)[0].tolist() == [False, True, False, True]
