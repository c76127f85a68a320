"""Read CIFAR-10 / CIFAR-100 from the standard python-pickle files that the user already has on disk.

The files are pickled dicts with bytes keys: b'data' is a uint8 array (N, 3072) holding each image as R, G, B planes
of 32x32 row-major pixels; b'labels' (CIFAR-10) or b'fine_labels' (CIFAR-100) a list of N ints. Unpickling is
restricted to numpy arrays and plain containers, so a tampered file cannot run code.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np

from photossl.errors import PhotosslError

CIFAR_LAYOUT = {
    # name: (folder inside the parent, train files, test files, label key, classes)
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        10,
    ),
    "cifar100": ("cifar-100-python", ("train",), ("test",), b"fine_labels", 100),
}


def _numpy_core():
    try:
        import numpy._core as core  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        import numpy.core as core
    return core


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list; ``name`` is what it asked for (module.name)."""

    def __init__(self, name: str):
        super().__init__(f"refusing to load {name}")
        self.name = name


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol 2 uses it to spell bytes, and nothing else (no other codec)."""
    if encoding not in ("latin1", "latin-1"):
        raise RefusedGlobal(f"_codecs.encode with codec {encoding!r}")
    return codecs.encode(text, encoding)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays and plain containers (files pickled by numpy 1.x or 2.x, Python 2
    or 3, any protocol); every global it is asked for passes :meth:`find_class`, which refuses all others."""

    def find_class(self, module: str, name: str):
        core = _numpy_core()
        allowed = {
            ("multiarray", "_reconstruct"): core.multiarray._reconstruct,  # protocol < 5 arrays
            ("multiarray", "scalar"): core.multiarray.scalar,  # numpy scalars
            ("numeric", "_frombuffer"): core.numeric._frombuffer,  # protocol 5 arrays
        }
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 spells bytes when written by Python 3
            return _latin1_encode
        if module in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric"):
            found = allowed.get((module.rsplit(".", 1)[1], name))
            if found is not None:
                return found
        raise RefusedGlobal(f"{module}.{name}")


def _read_batch(path: Path, label_key: bytes, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except RefusedGlobal as err:
        raise PhotosslError(f"refusing CIFAR batch {path}: it asks for {err.name[:100]!r}, and only numpy arrays and "
                            "plain containers are loaded (anything else could run code)") from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError) as err:
        first_line = (str(err).splitlines() or [""])[0][:200]
        raise PhotosslError(f"cannot read CIFAR batch {path}: {type(err).__name__}: {first_line}") from None
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise PhotosslError(f"CIFAR batch {path} is not a dict with keys b'data' and {label_key!r}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise PhotosslError(f"CIFAR batch {path}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise PhotosslError(f"CIFAR batch {path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise PhotosslError(f"CIFAR batch {path}: labels must lie in 0..{n_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def cifar_folder(name: str, root: str | Path) -> Path:
    """The folder holding ``name``'s batch files: ``root`` itself, or its standard subfolder if that exists."""
    sub = Path(root) / CIFAR_LAYOUT[name][0]
    return sub if sub.is_dir() else Path(root)


def read_cifar(name: str, root: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 3, 32, 32) and int64 labels (N,) of the 'train' or 'test' split of 'cifar10' / 'cifar100'.

    ``root`` is the batch folder (e.g. ``cifar-10-batches-py``) or its parent.
    """
    folder_name, train_files, test_files, label_key, n_classes = CIFAR_LAYOUT[name]
    folder = cifar_folder(name, root)
    files = train_files if split == "train" else test_files
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise PhotosslError(
            f"{name} {split} split: missing {', '.join(missing)} in {folder} "
            f"(expected the python-pickle files of {folder_name}/, given as that folder or its parent)"
        )
    parts = [_read_batch(folder / f, label_key, n_classes) for f in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
