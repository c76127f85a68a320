"""Per-sample batched actions agree with one-at-a-time application; label sampling, chunks and views."""

import random
from fractions import Fraction

import pytest
import torch

from photossl.symmetry import (
    D4,
    D4_MATRICES,
    Element,
    ElementBatch,
    Flips,
    HalfTranslations,
    Rot4,
    apply_elements,
    draw_labels,
)

GROUPS = [Rot4(), Flips(), D4(), HalfTranslations()]


def random_elements(n: int, size: int, seed: int) -> list[Element]:
    rng = random.Random(seed)
    return [
        Element(
            point=rng.choice(D4_MATRICES),
            shift=(Fraction(rng.randrange(size), size), Fraction(rng.randrange(size), size)),
            scale=rng.choice([1, 0.5, 2.5]),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_apply_labels_equals_one_at_a_time(group):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 2, 8, 8, generator=gen)
    labels = group.sample(20, gen)
    out = group.apply_labels(x, labels)
    for b in range(20):
        assert torch.equal(out[b], group.element(int(labels[b])).apply(x[b]))


def test_apply_labels_checks_shapes():
    with pytest.raises(ValueError, match=r"\(B,\)"):
        Rot4().apply_labels(torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long))


def test_element_batch_apply_equals_one_at_a_time():
    size = 10
    elements = random_elements(16, size, seed=1)
    x = torch.randn(16, 3, size, size, dtype=torch.float64)
    batch = ElementBatch.from_elements(elements, size)
    out = batch.apply(x)
    for b, g in enumerate(elements):
        torch.testing.assert_close(out[b], g.apply(x[b]), rtol=1e-12, atol=0)
    assert [batch.element(b) for b in range(16)] == elements


def test_element_batch_composition_and_inverse_match_elements():
    size = 10
    gs, hs = random_elements(16, size, seed=2), random_elements(16, size, seed=3)
    bg, bh = ElementBatch.from_elements(gs, size), ElementBatch.from_elements(hs, size)
    composed = bg @ bh
    inverse = bg.inverse()
    for b in range(16):
        for got, want in ((composed.element(b), gs[b] @ hs[b]), (inverse.element(b), gs[b].inverse())):
            # Batches hold scales as float64, so only the scale is compared approximately.
            assert (got.point, got.shift) == (want.point, want.shift)
            assert float(got.scale) == pytest.approx(float(want.scale), rel=1e-15)
    x = torch.randn(16, 1, size, size, dtype=torch.float64)
    torch.testing.assert_close(composed.apply(x), bg.apply(bh.apply(x)))


def test_element_batch_point_labels():
    batch = ElementBatch.from_elements([Element(point=p) for p in reversed(D4_MATRICES)], 4)
    assert batch.point_labels().tolist() == list(range(7, -1, -1))


def test_element_batch_rejects_other_grid():
    batch = ElementBatch.identity(2, 8)
    with pytest.raises(ValueError, match="8×8"):
        batch.apply(torch.zeros(2, 1, 6, 6))


def test_apply_elements_checks_shapes():
    with pytest.raises(ValueError, match="per-sample"):
        apply_elements(torch.zeros(2, 1, 4, 4), torch.zeros(3, 2, 2), torch.zeros(2, 2))


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_expand_is_group_major(group):
    x = torch.randn(5, 2, 8, 8)
    views, labels = group.expand(x)
    assert views.shape == (group.order * 5, 2, 8, 8)
    assert labels.tolist() == [lab for lab in range(group.order) for _ in range(5)]
    for lab in range(group.order):
        for b in range(5):
            assert torch.equal(views[lab * 5 + b], group.element(lab).apply(x[b]))


def test_sample_is_uniform_reproducible_and_in_range():
    labels = D4().sample(8000, torch.Generator().manual_seed(0))
    assert labels.shape == (8000,) and labels.dtype == torch.long
    counts = torch.bincount(labels, minlength=8)
    assert counts.min() > 850 and counts.max() < 1150
    again = D4().sample(8000, torch.Generator().manual_seed(0))
    assert torch.equal(labels, again)


@pytest.mark.parametrize("batch_size, chunk", [(64, 16), (70, 16), (5, 1), (8, 8)])
def test_chunk_sampling_shares_labels_within_chunks(batch_size, chunk):
    labels = Rot4().sample(batch_size, torch.Generator().manual_seed(1), chunk_size=chunk)
    assert labels.shape == (batch_size,)
    chunks = labels.split(chunk)
    for c in chunks:
        assert (c == c[0]).all()
    if len(chunks) > 8:
        assert len({int(c[0]) for c in chunks}) > 1


def test_chunk_size_is_validated():
    with pytest.raises(ValueError, match="chunk_size"):
        draw_labels(4, 8, chunk_size=0)
