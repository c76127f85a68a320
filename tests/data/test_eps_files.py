"""The one permittivity-file reader (``photossl bands --eps``, ``photossl predict --data``): every format reads the
same cells, and every bad file is one line naming it."""

import h5py
import numpy as np
import pytest

from photossl.data.eps_files import read_cells, read_eps_file
from photossl.errors import PhotosslError

CELLS = np.random.default_rng(0).uniform(1, 20, (3, 4, 4)).astype(np.float32)


def test_every_format_reads_the_same_cells(tmp_path, reference_dataset):
    np.save(tmp_path / "a.npy", CELLS)
    np.savez(tmp_path / "b.npz", cells=CELLS)
    with h5py.File(tmp_path / "c.h5", "w") as handle:
        handle["eps"] = CELLS
        handle["other"] = np.zeros((2, 2))
    with h5py.File(tmp_path / "d.hdf5", "w") as handle:  # SIB-CL's layout, 1-based keys: 10 sorts after 9
        for i, cell in enumerate(CELLS):
            handle[f"unitcell/mpbepsimage/{(i + 1) * 5}"] = cell
    with h5py.File(tmp_path / "e.h5", "w") as handle:
        handle["maps/only"] = CELLS
    for name in ("a.npy", "b.npz", "c.h5", "d.hdf5", "e.h5"):
        eps, ids = read_cells(tmp_path / name)
        assert eps.dtype == np.float64 and np.array_equal(eps, CELLS.astype(np.float64)), name
        assert list(ids) == [0, 1, 2], name
    assert np.array_equal(read_eps_file(tmp_path / "c.h5", "other").eps, np.zeros((2, 2)))
    one, _ = read_cells(tmp_path / "a.npy")
    np.save(tmp_path / "one.npy", CELLS[0])
    assert read_cells(tmp_path / "one.npy")[0].shape == (1, 4, 4) and np.array_equal(one[0], CELLS[0])
    eps, ids = read_cells(reference_dataset)  # a dataset folder keeps its cell ids
    assert eps.shape == (24, 16, 16) and list(ids) == list(range(24))
    chunk = sorted((reference_dataset / "chunks").glob("chunk-*.nc"))[1]
    eps, ids = read_cells(chunk)
    assert list(ids) == [2, 3]


def _write(path, kind):
    if kind == "text":
        path.write_text("1 2\n3 4\n")
    elif kind == "npz2":
        np.savez(path, a=CELLS, b=CELLS)
    elif kind == "h5two":
        with h5py.File(path, "w") as handle:
            handle["a"], handle["b"] = CELLS, CELLS
    elif kind == "truncated":
        np.save(path, CELLS)
        path.write_bytes(path.read_bytes()[:60])
    elif kind == "complex":
        np.save(path, CELLS * (1 + 0.1j))
    elif kind == "strings":
        np.save(path, np.array([["1.5", "2"], ["3", "4"]]))
    elif kind == "ragged":
        np.save(path, np.ones((2, 4, 3)))
    elif kind == "not-hdf5":
        path.write_bytes(b"\x00not an hdf5 file\n" * 10)
    elif kind == "empty-sibcl":
        with h5py.File(path, "w") as handle:
            handle.create_group("unitcell/mpbepsimage")


@pytest.mark.parametrize("name, kind, key, fragment", [
    ("x.txt", "text", None, "unsupported input '.txt'"),
    ("x.npz", "npz2", None, "name the array with --key (has a, b)"),
    ("x.npz", "npz2", "c", "name the array with --key"),
    ("x.h5", "h5two", None, "name the permittivity dataset with --key (found 2 arrays)"),
    ("x.h5", "h5two", "c", "no dataset 'c'"),
    ("x.npy", "truncated", None, "cannot read"),
    ("x.h5", "not-hdf5", None, "cannot read"),
    ("x.npy", "complex", None, "is complex"),
    ("x.npy", "strings", None, "holds text"),
    ("x.npy", "ragged", None, "must be (N, N) or (B, N, N)"),
    ("x.h5", "empty-sibcl", None, "holds no cells"),
    ("missing.npy", None, None, "input not found"),
])
def test_bad_files_are_one_line_naming_the_file(tmp_path, name, kind, key, fragment):
    path = tmp_path / name
    if kind is not None:
        _write(path, kind)
    with pytest.raises(PhotosslError) as caught:
        read_cells(path, key)
    message = str(caught.value)
    assert fragment in message and str(path) in message and "\n" not in message, message
