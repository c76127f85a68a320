"""E-SSL's rotation view: a small SimCLR crop shown at all four right-angle rotations, labelled by the rotation.

Dangovski et al., "Equivariant Contrastive Learning" (ICLR 2022), CIFAR setting: a 16-px crop of a 32-px image
(the full SimCLR recipe at half size), expanded to 0/90/180/270 degrees; the head predicts which.
"""

from __future__ import annotations

import torch

from photossl.errors import PhotosslError
from photossl.vision.simclr import SimCLRAugment, check_images


def rotate_four(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of images (B, C, H, W): (4B, C, H, W) and int64 labels (4B,).

    Block k (rows k*B .. (k+1)*B - 1) is ``torch.rot90(images, k, dims=(-2, -1))``, i.e. k quarter turns
    counter-clockwise as displayed (row 0 at the top), and has label k. Needs square images.
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise PhotosslError(f"rotate_four needs square (B, C, H, H) images, got shape {tuple(images.shape)}")
    rotated = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4, device=images.device).repeat_interleave(images.shape[0])
    return rotated, labels


def rotation_view(
    images: torch.Tensor,
    crop_size: int | None = None,
    *,
    generator: torch.Generator | None = None,
    augment: SimCLRAugment | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCLR-augmented crops of images (B, C, H, W), each at four rotations: (4B, C, c, c) and labels (4B,) in 0..3.

    ``crop_size`` c defaults to H // 2. ``augment`` replaces the default recipe ``SimCLRAugment(size=c)``; its
    ``size`` must then equal ``crop_size`` if both are given. Label k means ``torch.rot90(crop, k, dims=(-2, -1))``;
    the layout is that of :func:`rotate_four`.
    """
    check_images(images)
    if augment is None:
        c = images.shape[-2] // 2 if crop_size is None else crop_size
        augment = SimCLRAugment(size=c)
    elif crop_size is not None and crop_size != augment.size:
        raise PhotosslError(f"crop_size={crop_size} disagrees with augment.size={augment.size}")
    return rotate_four(augment(images, generator))
