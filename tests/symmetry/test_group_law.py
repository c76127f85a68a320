"""Group law of symmetry elements and finite groups; the action on pixels is a left action."""

import itertools
import random
from fractions import Fraction

import pytest
import torch

from photossl.symmetry import (
    D4,
    D4_MATRICES,
    Element,
    FiniteGroup,
    Flips,
    HalfTranslations,
    Rot4,
    d4_label,
    finite_group,
)

GROUPS = [Rot4(), Flips(), D4(), HalfTranslations()]
SCALES = [Fraction(1), Fraction(1, 2), Fraction(3), 1.1, 0.37]


def random_element(rng: random.Random, size: int = 12) -> Element:
    point = rng.choice(D4_MATRICES)
    shift = (Fraction(rng.randrange(-2 * size, 2 * size), size), Fraction(rng.randrange(size), size))
    return Element(point=point, shift=shift, scale=rng.choice(SCALES))


def test_identity_is_neutral():
    rng = random.Random(0)
    e = Element.identity()
    assert e.is_identity
    for _ in range(20):
        g = random_element(rng)
        assert e @ g == g and g @ e == g


def test_associativity_on_random_triples():
    rng = random.Random(1)
    for _ in range(200):
        g, h, k = (random_element(rng) for _ in range(3))
        assert (g @ h) @ k == g @ (h @ k)


def test_inverse_on_both_sides():
    rng = random.Random(2)
    for _ in range(100):
        g = random_element(rng)
        assert (g @ g.inverse()).is_identity
        assert (g.inverse() @ g).is_identity
        assert g.inverse().inverse() == g


def test_star_is_composition():
    rng = random.Random(3)
    g, h = random_element(rng), random_element(rng)
    assert g * h == g @ h


def test_quarter_turns_and_mirrors():
    r = Element.rotation(1)
    assert r @ r @ r @ r == Element()
    assert r @ r != Element()
    assert Element.rotation(3) == r.inverse()
    assert Element.rotation(-1) == Element.rotation(3)
    for k in range(4):
        expected = Element()
        for _ in range(k):
            expected = r @ expected
        assert Element.rotation(k) == expected
    for axis in ("x", "y", "diagonal", "antidiagonal"):
        m = Element.mirror(axis)
        assert m != Element()
        assert m @ m == Element()


def test_translations_are_periodic_and_compose_by_addition():
    n = 8
    assert Element.translation(n, -n, n) == Element()
    assert Element.translation(3, 5, n) @ Element.translation(7, 4, n) == Element.translation(10, 9, n)
    assert Element.translation(3, 5, n).pixel_shift(n) == (3, 5)
    assert Element.translation(-1, 0, n).pixel_shift(n) == (n - 1, 0)
    # The same lattice translation on a finer grid is the same element.
    assert Element.translation(1, 2, 4) == Element.translation(4, 8, 16)


def test_semidirect_product_law():
    r = Element.rotation(1)
    t = Element.translation(1, 0, 4)
    # r @ t: translate first, then rotate the translated position: r -> R(r + t) = R r + R t.
    assert (r @ t).shift == (Fraction(0), Fraction(1, 4))
    assert (t @ r).shift == (Fraction(1, 4), Fraction(0))
    assert r @ t @ r.inverse() == Element.translation(0, 1, 4)


def test_scale_is_exact_and_central():
    s = Element.scaling(1.1)
    assert (s @ s.inverse()).is_identity
    assert s @ Element.rotation(1) == Element.rotation(1) @ s
    assert float((s @ s).scale) == pytest.approx(1.21)


def test_invalid_elements_are_rejected():
    with pytest.raises(ValueError, match="D4"):
        Element(point=((1, 1), (0, 1)))
    with pytest.raises(ValueError, match="integer"):
        Element(point=((0.5, 0), (0, 1)))
    with pytest.raises(ValueError, match="scale"):
        Element(scale=0)
    with pytest.raises(ValueError, match="scale"):
        Element(scale=-2.0)
    with pytest.raises(ValueError, match="allowed: x, y, diagonal, antidiagonal"):
        Element.mirror("z")
    with pytest.raises(ValueError, match="whole number of pixels"):
        Element(shift=(Fraction(1, 3), 0)).pixel_shift(32)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_finite_group_axioms(group: FiniteGroup):
    members = set(group)
    assert len(members) == group.order == len(group)
    assert group.element(0) == Element()
    for g, h in itertools.product(group, group):
        assert g @ h in members
    for g in group:
        assert g.inverse() in members


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_label_round_trip(group: FiniteGroup):
    for label in range(group.order):
        assert group.label(group.element(label)) == label
    for g in group:
        assert group.element(group.label(g)) == g
    with pytest.raises(ValueError, match="outside"):
        group.element(group.order)
    with pytest.raises(ValueError, match="not in group"):
        group.label(Element.scaling(2.0))


def test_group_orders_and_names():
    assert [len(g) for g in GROUPS] == [4, 4, 8, 4]
    for g in GROUPS:
        assert type(finite_group(g.name)) is type(g)
    with pytest.raises(ValueError, match="allowed: rot4, flip, d4, half_translate"):
        finite_group("c6")


def test_documented_labels():
    rot4, d4, flips, half = Rot4(), D4(), Flips(), HalfTranslations()
    for k in range(4):
        assert rot4.element(k) == Element.rotation(k) == d4.element(k)
    assert d4.element(4) == Element.mirror("x")
    assert d4.element(5) == Element.mirror("antidiagonal")
    assert d4.element(6) == Element.mirror("y")
    assert d4.element(7) == Element.mirror("diagonal")
    assert [d4_label(e.point) for e in d4] == list(range(8))
    assert [flips.element(i) for i in range(4)] == [
        Element(),
        Element.mirror("x"),
        Element.mirror("y"),
        Element.rotation(2),
    ]
    # E-SSL's half-translation classes: (0, 0), (0, N/2), (N/2, 0), (N/2, N/2).
    assert [half.element(i).pixel_shift(32) for i in range(4)] == [(0, 0), (0, 16), (16, 0), (16, 16)]


def test_group_construction_is_validated():
    r = Element.rotation(1)
    with pytest.raises(ValueError, match="not closed"):
        FiniteGroup("bad", [Element(), r])
    with pytest.raises(ValueError, match="identity first"):
        FiniteGroup("bad", [r, Element()])
    with pytest.raises(ValueError, match="twice"):
        FiniteGroup("bad", [Element(), Element.mirror("x"), Element.mirror("x")])


def test_action_of_composition_is_composition_of_actions():
    # Convention: (g @ h).apply(x) == g.apply(h.apply(x)), h acts first.
    rng = random.Random(4)
    x = torch.randn(3, 2, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for _ in range(50):
        g, h = random_element(rng), random_element(rng)
        torch.testing.assert_close((g @ h).apply(x), g.apply(h.apply(x)), rtol=1e-12, atol=1e-12)
    # The opposite order differs for non-commuting elements, so the check above can fail.
    r, m = Element.rotation(1), Element.mirror("x")
    assert not torch.equal((r @ m).apply(x), (m @ r).apply(x))


def test_pixel_action_moves_values_to_the_mapped_position():
    # Slow reference from the definition (g·ε)(P r + t) = s·ε(r), one pixel at a time.
    rng = random.Random(5)
    n = 6
    x = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for _ in range(20):
        g = random_element(rng, size=n)
        out = g.apply(x)
        for i, j in itertools.product(range(n), range(n)):
            gx, gy = g.map_position((i / n, j / n))
            ti, tj = round(gx * n) % n, round(gy * n) % n
            assert out[ti, tj].item() == pytest.approx(float(g.scale) * x[i, j].item(), rel=1e-12)


def test_inverse_undoes_the_action():
    rng = random.Random(6)
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    for _ in range(20):
        g = random_element(rng)
        torch.testing.assert_close(g.inverse().apply(g.apply(x)), x, rtol=1e-12, atol=1e-12)
