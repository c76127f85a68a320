"""CIFAR batches are unpickled with an allow-list: what numpy writes for arrays (any protocol) loads; a batch that
asks for anything else (a payload that would create a file) is refused in one line and runs nothing."""

import builtins
import pickle
from pathlib import Path

import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.vision.cifar import read_cifar


def _batch(n: int = 3) -> dict:
    rng = np.random.default_rng(n)
    return {b"batch_label": b"testing batch 1 of 1", b"labels": [int(k) for k in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"img_%d.png" % i for i in range(n)]}


def _write(folder: Path, batch, protocol: int) -> None:
    folder.mkdir(exist_ok=True)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch, f, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_written_by_numpy_load(tmp_path, protocol):
    batch = _batch()
    _write(tmp_path / "cifar-10-batches-py", batch, protocol)
    images, labels = read_cifar("cifar10", tmp_path, "test")
    assert np.array_equal(images, batch[b"data"].reshape(-1, 3, 32, 32))
    assert labels.tolist() == batch[b"labels"]


class _Touch:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class _Open:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.open, (str(self.marker), "w"))


# the first global each payload asks for: protocol 2 spells a method as getattr(Path, 'touch'), open is io.open
REFUSED = {(_Touch, 2): "builtin__.getattr'", (_Touch, 5): "Path.touch'", (_Open, 2): "io.open'",
           (_Open, 5): "io.open'"}


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("payload", [_Touch, _Open])
def test_a_code_execution_payload_is_refused(tmp_path, payload, protocol):
    refused = REFUSED[payload, protocol]
    marker = tmp_path / "marker"
    folder = tmp_path / "cifar-10-batches-py"
    for where in (b"data", b"labels"):  # hidden as the array or inside the label list
        batch = _batch()
        batch[where] = payload(marker) if where == b"data" else [0, payload(marker), 1]
        _write(folder, batch, protocol)
        with pytest.raises(PhotosslError) as caught:
            read_cifar("cifar10", tmp_path, "test")
        message = str(caught.value)
        assert "\n" not in message and str(folder / "test_batch") in message and refused in message
    assert not marker.exists()


def test_only_the_latin1_codec_of_protocol_2_is_admitted(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    # {b'data': _codecs.encode('x', 'rot13')}: a codec other than the one protocol 2 uses for bytes
    (folder / "test_batch").write_bytes(b"\x80\x02}q\x00C\x04dataq\x01c_codecs\nencode\nq\x02X\x01\x00\x00\x00x"
                                        b"X\x05\x00\x00\x00rot13\x86Rs.")
    with pytest.raises(PhotosslError, match="refusing CIFAR batch .*_codecs.encode with codec 'rot13'"):
        read_cifar("cifar10", tmp_path, "test")
