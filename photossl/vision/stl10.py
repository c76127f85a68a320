"""Read STL-10 from the standard binary files (``stl10_binary/``) that the user already has on disk.

``*_X.bin`` holds uint8 images one after another, each as three 96x96 channel planes (R, G, B), every plane stored
column-major (the first 96 bytes are the first column, top to bottom). ``*_y.bin`` holds one uint8 label per image
in 1..10. The unlabelled split has no labels; it gets the label -1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photossl.errors import PhotosslError

STL10_FOLDER = "stl10_binary"
STL10_SIDE = 96
_IMAGE_BYTES = 3 * STL10_SIDE * STL10_SIDE

# split -> (image file, label file or None), in the order they are concatenated
STL10_FILES = {
    "train": (("train_X.bin", "train_y.bin"),),
    "test": (("test_X.bin", "test_y.bin"),),
    "unlabeled": (("unlabeled_X.bin", None),),
    "train+unlabeled": (("train_X.bin", "train_y.bin"), ("unlabeled_X.bin", None)),
}


def stl10_folder(root: str | Path) -> Path:
    """The folder holding the binaries: ``root`` itself, or ``root/stl10_binary`` if that exists."""
    sub = Path(root) / STL10_FOLDER
    return sub if sub.is_dir() else Path(root)


def _read_images(path: Path) -> np.ndarray:
    n_bytes = path.stat().st_size
    if n_bytes == 0 or n_bytes % _IMAGE_BYTES:
        raise PhotosslError(f"STL-10 file {path}: {n_bytes} bytes is not a whole number of 3x96x96 images")
    # memmap: the unlabelled file is 2.7 GB; pages are read only as the caller converts them
    raw = np.memmap(path, dtype=np.uint8, mode="r", shape=(n_bytes // _IMAGE_BYTES, 3, STL10_SIDE, STL10_SIDE))
    # each plane was written column-major, so the last two axes of the raw view are (column, row)
    return raw.transpose(0, 1, 3, 2)


def _read_labels(path: Path, n_images: int) -> np.ndarray:
    labels = np.fromfile(path, dtype=np.uint8).astype(np.int64)
    if labels.shape != (n_images,):
        raise PhotosslError(f"STL-10 file {path}: {labels.size} labels for {n_images} images")
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise PhotosslError(f"STL-10 file {path}: labels must lie in 1..10")
    return labels - 1


def read_stl10(root: str | Path, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(uint8 images (N, 3, 96, 96) row-major, possibly a memmap view; int64 labels (N,) in 0..9 or -1) per file.

    ``root`` is the ``stl10_binary`` folder or its parent. Parts are returned unconcatenated so that the caller can
    convert the 100k unlabelled images chunk by chunk.
    """
    folder = stl10_folder(root)
    pairs = STL10_FILES[split]
    needed = [name for pair in pairs for name in pair if name is not None]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise PhotosslError(
            f"stl10 {split} split: missing {', '.join(missing)} in {folder} "
            f"(expected the binary files of {STL10_FOLDER}/, given as that folder or its parent)"
        )
    parts = []
    for image_file, label_file in pairs:
        images = _read_images(folder / image_file)
        if label_file is None:
            labels = np.full(images.shape[0], -1, dtype=np.int64)
        else:
            labels = _read_labels(folder / label_file, images.shape[0])
        parts.append((images, labels))
    return parts
