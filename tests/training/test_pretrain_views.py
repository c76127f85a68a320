"""View pipelines: shapes, E-SSL expansion of the un-augmented batch, CARE's chunk-shared augmentations."""

import pytest
import torch

from photossl.symmetry import SymmetryPolicy, finite_group
from photossl.training.config import MethodSpec
from photossl.training.views import PhotonicsViews, Views, VisionViews


def _same_cell_batch(b=12, n=8, channels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, n, n, generator=g).expand(b, channels, n, n).contiguous()


def _chunk_constant(v: torch.Tensor, chunk: int) -> bool:
    chunks = v.reshape(-1, chunk, *v.shape[1:])
    return bool((chunks == chunks[:, :1]).all())


def test_photonics_views_for_essl():
    policy = SymmetryPolicy(invariant=["translate", "flip"], predict="rot4")
    x = torch.rand(6, 1, 8, 8)
    views = PhotonicsViews(policy, MethodSpec("simclr", predict=True))(x, torch.Generator().manual_seed(0))
    assert views.view1.shape == views.view2.shape == x.shape
    assert not torch.equal(views.view1, views.view2)
    expected, labels = finite_group("rot4").expand(x)  # every rotation of the *un-augmented* batch
    torch.testing.assert_close(views.predict_views, expected)
    assert torch.equal(views.predict_labels, labels)
    assert views.care1 is None and views.clean is None


def test_photonics_views_are_exact_symmetries():
    # With rot4 invariance on a rotation-invariant cell, every view is the cell itself.
    cell = torch.zeros(1, 1, 8, 8)
    cell[..., 0, 0] = 1.0
    x = cell.expand(4, 1, 8, 8)
    views = PhotonicsViews(SymmetryPolicy(invariant=["rot4"]), MethodSpec())(x, torch.Generator().manual_seed(0))
    assert torch.equal(views.view1, x) and torch.equal(views.view2, x)


def test_photonics_care_views_share_one_element_per_chunk():
    policy = SymmetryPolicy(invariant=["translate", "d4"])
    x = _same_cell_batch(b=12)
    g = torch.Generator().manual_seed(0)
    shared = PhotonicsViews(policy, MethodSpec(care=True), care_chunk=4, care_views="shared")(x, g)
    assert _chunk_constant(shared.view1, 4) and _chunk_constant(shared.view2, 4)
    assert not _chunk_constant(shared.view1, 12)  # different chunks draw different elements
    separate = PhotonicsViews(policy, MethodSpec(care=True), care_chunk=4, care_views="separate",
                              care_pairing="clean")(x, g)
    assert not _chunk_constant(separate.view1, 4)  # per-sample contrastive views
    assert _chunk_constant(separate.care1, 4) and _chunk_constant(separate.care2, 4)
    assert torch.equal(separate.clean, x)


def test_views_are_reproducible_from_the_generator():
    policy = SymmetryPolicy(invariant=["translate", "flip"], predict="rot4")
    pipeline = PhotonicsViews(policy, MethodSpec(care=True, predict=True), care_chunk=2)
    x = torch.rand(4, 1, 8, 8)
    a = pipeline(x, torch.Generator().manual_seed(5))
    b = pipeline(x, torch.Generator().manual_seed(5))
    assert torch.equal(a.view1, b.view1) and torch.equal(a.view2, b.view2)


def test_rows_keep_the_group_major_layout():
    b = 4
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1).expand(b, 1, 2, 2)
    views = Views(x, x + 10, torch.cat([x + 100 * k for k in range(3)]), torch.arange(3).repeat_interleave(b))
    part = views.rows(slice(2, 4))
    assert torch.equal(part.view1, x[2:4])
    assert part.predict_views[:, 0, 0, 0].tolist() == [2, 3, 102, 103, 202, 203]
    assert part.predict_labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_vision_views_shapes_rotation_and_chunks():
    pytest.importorskip("kornia")
    images = _same_cell_batch(b=8, n=16)
    g = torch.Generator().manual_seed(0)
    views = VisionViews("digits", 16, MethodSpec(predict=True, care=True), care_chunk=4)(images, g)
    assert views.view1.shape == (8, 1, 16, 16)
    assert views.predict_views.shape == (32, 1, 8, 8)
    assert views.predict_labels.tolist() == [k for k in range(4) for _ in range(8)]
    # rotation blocks are rot90 of block 0
    block = views.predict_views.view(4, 8, 1, 8, 8)
    for k in range(4):
        torch.testing.assert_close(block[k], torch.rot90(block[0], k, dims=(-2, -1)))
    assert _chunk_constant(views.view1, 4) and _chunk_constant(views.view2, 4)
    # standardised with the digits statistics: a constant 0 image maps to -mean/std
    zeros = VisionViews("digits", 16, MethodSpec())(torch.zeros(2, 1, 16, 16), g)
    torch.testing.assert_close(zeros.view1, torch.full_like(zeros.view1, -0.3053 / 0.3189))


def test_one_predicted_copy_per_sample():
    policy = SymmetryPolicy(invariant=["flip"], predict="d4")
    x = torch.rand(16, 1, 8, 8)
    views = PhotonicsViews(policy, MethodSpec(predict=True), predict_views="one")(x, torch.Generator().manual_seed(0))
    assert views.predict_views.shape == x.shape and views.predict_labels.shape == (16,)
    group = finite_group("d4")
    for b in range(16):
        label = int(views.predict_labels[b])
        torch.testing.assert_close(views.predict_views[b], group.element(label).apply(x[b]))
    assert len(set(views.predict_labels.tolist())) > 1


def test_keep_one_prediction_picks_matching_rows():
    b = 5
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1)
    views = Views(x, x, torch.cat([x + 100 * k for k in range(4)]), torch.arange(4).repeat_interleave(b))
    views.keep_one_prediction(torch.Generator().manual_seed(0))
    values = views.predict_views.view(-1)
    assert torch.equal(values % 100, torch.arange(b, dtype=torch.float32))  # sample b keeps one of its own copies
    assert torch.equal(torch.div(values, 100, rounding_mode="floor").long(), views.predict_labels)
