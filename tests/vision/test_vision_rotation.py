"""E-SSL rotation view: label k is exactly torch.rot90 by k of the un-rotated crop."""

import pytest
import torch

from photossl.errors import PhotosslError
from photossl.vision import SimCLRAugment, rotate_four, rotation_view

pytest.importorskip("kornia")


def test_rotate_four_layout_and_direction():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    rotated, labels = rotate_four(x)
    assert labels.tolist() == [0, 1, 2, 3] and labels.dtype == torch.int64
    # one quarter turn counter-clockwise as displayed (row 0 on top): the right column becomes the top row
    assert rotated[1, 0].tolist() == [[2.0, 4.0], [1.0, 3.0]]
    assert rotated[2, 0].tolist() == [[4.0, 3.0], [2.0, 1.0]]
    assert rotated[3, 0].tolist() == [[3.0, 1.0], [4.0, 2.0]]


def test_rotate_four_blocks_are_rot90():
    x = torch.rand(5, 3, 6, 6)
    rotated, labels = rotate_four(x)
    assert rotated.shape == (20, 3, 6, 6)
    for k in range(4):
        assert torch.equal(rotated[5 * k : 5 * (k + 1)], torch.rot90(x, k, dims=(-2, -1)))
        assert (labels[5 * k : 5 * (k + 1)] == k).all()
    with pytest.raises(PhotosslError, match="square"):
        rotate_four(torch.rand(2, 1, 4, 6))


def test_rotation_view_rotates_the_same_crops_the_recipe_draws():
    images = torch.rand(6, 3, 16, 16)
    rotated, labels = rotation_view(images, generator=torch.Generator().manual_seed(4))
    crops = SimCLRAugment(size=8)(images, torch.Generator().manual_seed(4))
    assert rotated.shape == (24, 3, 8, 8) and labels.shape == (24,)
    for k in range(4):
        block = rotated[labels == k]
        assert torch.equal(block, torch.rot90(crops, k, dims=(-2, -1)))
    # the crops are augmented: not all four blocks are the same picture
    assert not torch.equal(rotated[:6], rotated[6:12])


def test_rotation_view_without_augmentation_rotates_the_images():
    images = torch.rand(4, 1, 10, 10)
    plain = SimCLRAugment(size=10, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0)
    rotated, labels = rotation_view(images, augment=plain)
    for k in range(4):
        assert torch.allclose(rotated[labels == k], torch.rot90(images, k, dims=(-2, -1)), atol=1e-6)


def test_rotation_view_crop_size_and_errors():
    images = torch.rand(3, 3, 32, 32)
    rotated, _ = rotation_view(images, 12)
    assert rotated.shape == (12, 3, 12, 12) and 0 <= rotated.min() and rotated.max() <= 1
    with pytest.raises(PhotosslError, match="crop_size=12 disagrees"):
        rotation_view(images, 12, augment=SimCLRAugment(size=16))
