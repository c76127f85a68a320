"""CARE shared augmentation: one draw per chunk, replayed onto every sample of the chunk."""

import pytest
import torch

from photossl.errors import PhotosslError
from photossl.vision import SimCLRAugment, chunk_index, shared_augment

pytest.importorskip("kornia")


def test_identical_images_give_identical_views_within_a_chunk_only():
    images = torch.rand(1, 3, 16, 16).expand(24, -1, -1, -1).contiguous()
    a1, a2 = shared_augment(images, 6, generator=torch.Generator().manual_seed(0))
    assert a1.shape == a2.shape == (24, 3, 16, 16)
    for view in (a1, a2):
        chunks = view.view(4, 6, 3, 16, 16)
        assert (chunks == chunks[:, :1]).all()  # same augmentation inside each chunk
        for i in range(4):
            for j in range(i + 1, 4):
                assert not torch.equal(chunks[i, 0], chunks[j, 0])  # chunks draw independently
    assert not torch.equal(a1, a2)  # a1 and a2 are different draws


def test_views_are_the_chunk_draw_applied_to_each_sample():
    images = torch.rand(8, 3, 12, 12)
    augment = SimCLRAugment(size=10)
    a1, a2 = shared_augment(images, 4, generator=torch.Generator().manual_seed(7), augment=augment)
    g = torch.Generator().manual_seed(7)
    first, second = augment.sample(2, 12, 12, g), augment.sample(2, 12, 12, g)
    for chunk in range(2):
        rows = slice(4 * chunk, 4 * chunk + 4)
        replay = torch.full((4,), chunk)
        assert torch.equal(a1[rows], augment.apply(images[rows], first.take(replay)))
        assert torch.equal(a2[rows], augment.apply(images[rows], second.take(replay)))


def test_ragged_last_chunk_matches_torch_split():
    assert chunk_index(10, 4).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    pieces = torch.split(torch.arange(10), 4)
    assert [int(chunk_index(10, 4)[p].unique()) for p in pieces] == [0, 1, 2]
    images = torch.rand(1, 1, 8, 8).expand(10, -1, -1, -1).contiguous()
    a1, _ = shared_augment(images, 4, size=6)
    assert a1.shape == (10, 1, 6, 6)
    assert (a1[8:] == a1[8]).all() and 0 <= a1.min() and a1.max() <= 1


def test_chunk_size_one_is_plain_independent_augmentation():
    images = torch.rand(1, 3, 8, 8).expand(6, -1, -1, -1).contiguous()
    a1, _ = shared_augment(images, 1, generator=torch.Generator().manual_seed(1))
    assert all(not torch.equal(a1[i], a1[i + 1]) for i in range(5))


def test_bad_arguments():
    images = torch.rand(4, 3, 8, 8)
    for bad in (0, -2, 2.0, True):
        with pytest.raises(PhotosslError, match="chunk_size"):
            shared_augment(images, bad)
    with pytest.raises(PhotosslError, match="size=4 disagrees"):
        shared_augment(images, 2, size=4, augment=SimCLRAugment(size=8))
