"""Chunk files, manifests, checksums, the writer lock and open_dataset."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import xarray as xr

from photossl.data import bundled_dataset_path, open_dataset
from photossl.data.generate import generate_chunk, generate_dataset
from photossl.data.schema import chunk_encoding
from photossl.data.storage import (
    WriterLock,
    chunk_name,
    config_differences,
    dataset_sha256,
    file_sha256,
    write_chunk,
)
from photossl.errors import PhotosslError


def test_chunk_is_self_describing_for_plain_xarray(reference_dataset):
    path = reference_dataset / "chunks" / "chunk-00000004.nc"
    with xr.open_dataset(path) as chunk:  # no engine, no photossl: what a user years later does
        chunk.load()
    assert chunk.cell.values.tolist() == [4, 5]
    assert chunk.eps.dims == ("cell", "x", "y") and chunk.eps.dtype == np.float32
    assert chunk.dos.dims == ("cell", "freq") and chunk.freq.size == 400
    assert chunk.bands_tm.dims == ("cell", "k", "band") and chunk.bands_tm.shape == (2, 49, 5)
    assert chunk.gaps_tm.dims == ("cell", "band_pair", "gap_field")
    assert chunk.gap_field.values.tolist() == ["lower_edge", "upper_edge", "gap_to_midgap"]
    for name in ("eps_in", "eps_out", "filling", "eps_mean", "fill_fraction", "level", "cell_seed"):
        assert chunk[name].dims == ("cell",), name
    assert chunk.coef_real.dims == ("cell", "gx", "gy") and chunk.k_x.dims == ("k",)
    config = json.loads(chunk.attrs["config"])
    assert config["seed"] == chunk.attrs["seed"] == 5 and config["n_bands"] == 5
    assert json.loads(chunk.attrs["solver_options"])["cutoff"] == 3.0
    assert chunk.attrs["solver"] == "pwe" and chunk.attrs["preset"] == "sibcl-p1"
    assert chunk.attrs["photossl_version"] and "omega a / (2 pi c)" in chunk.attrs["units"]
    assert chunk.attrs["data_sha256"] == dataset_sha256(chunk)
    manifest = json.loads((reference_dataset / "manifest.json").read_text())
    entry = manifest["chunks"][path.name]
    assert {k: entry[k] for k in ("start", "stop", "sha256")} == {"start": 4, "stop": 6, "sha256": file_sha256(path)}
    assert set(entry) == {"start", "stop", "sha256", "label_cpu_s"} and entry["label_cpu_s"] > 0
    assert manifest["complete"] and manifest["config"] == config


def test_writing_a_chunk_twice_gives_identical_bytes(tiny_config, tmp_path):
    # HDF5 can store object timestamps (1 s resolution): the pause would expose them
    chunk = generate_chunk(tiny_config(n_cells=3), 0, 3)
    first = write_chunk(chunk, tmp_path / "a.nc", chunk_encoding(chunk))
    time.sleep(1.1)
    second = write_chunk(generate_chunk(tiny_config(n_cells=3), 0, 3), tmp_path / "b.nc", chunk_encoding(chunk))
    assert first == second == file_sha256(tmp_path / "b.nc")
    assert (tmp_path / "a.nc").read_bytes() == (tmp_path / "b.nc").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_open_dataset_concatenates_in_cell_order(reference_dataset):
    ds = open_dataset(reference_dataset)
    assert ds.sizes["cell"] == 24 and ds.cell.values.tolist() == list(range(24))
    assert ds.eps.dims == ("cell", "x", "y") and ds.dos.dims == ("cell", "freq") and "freq" in ds.coords
    # what xarray itself makes of the chunk files (open_dataset reads all but the first with h5py)
    chunks = [xr.open_dataset(p, engine="h5netcdf").load() for p in sorted((reference_dataset / "chunks").iterdir())]
    expected = xr.concat(chunks, dim="cell", data_vars="minimal", coords="minimal", compat="override",
                         combine_attrs="drop_conflicts")
    xr.testing.assert_identical(ds.drop_attrs(), expected.drop_attrs())
    assert all(ds[name].dtype == expected[name].dtype for name in ds.variables)
    assert dataset_sha256(ds) == dataset_sha256(expected)
    assert "data_sha256" not in ds.attrs and ds.attrs["seed"] == 5
    subset = open_dataset(reference_dataset, variables=["eps", "dos"])
    assert set(subset.data_vars) == {"eps", "dos"} and "freq" in subset.coords
    np.testing.assert_array_equal(subset.dos.values, ds.dos.values)


def test_dataset_content_does_not_depend_on_chunk_size(tiny_config, tmp_path, reference_dataset):
    generate_dataset(tiny_config(n_cells=24, chunk_size=7, seed=5), tmp_path / "c7", workers=1, progress=False)
    assert len(list((tmp_path / "c7" / "chunks").glob("*.nc"))) == 4
    assert dataset_sha256(open_dataset(tmp_path / "c7")) == dataset_sha256(open_dataset(reference_dataset))


def test_truncated_chunk_is_named(reference_dataset, copy_dataset):
    ds = copy_dataset(reference_dataset)
    path = ds / "chunks" / chunk_name(12)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotosslError, match="chunk-00000012.nc is corrupt or truncated"):
        open_dataset(ds)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one flipped bit
    with pytest.raises(PhotosslError, match="chunk-00000012.nc is corrupt"):
        open_dataset(ds)
    path.unlink()
    with pytest.raises(PhotosslError, match="chunk-00000012.nc is listed in the manifest but missing"):
        open_dataset(ds)


def test_incomplete_and_missing_datasets(reference_dataset, copy_dataset, tmp_path):
    ds = copy_dataset(reference_dataset)
    manifest = json.loads((ds / "manifest.json").read_text())
    del manifest["chunks"][chunk_name(8)]
    (ds / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PhotosslError, match=r"incomplete: 2 of 24 cells missing \(first gap: cells 8..9\)"):
        open_dataset(ds)
    partial = open_dataset(ds, allow_incomplete=True)
    assert partial.cell.values.tolist() == [*range(8), *range(10, 24)]
    with pytest.raises(PhotosslError, match="not a photossl dataset"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(PhotosslError, match="cannot read manifest"):
        open_dataset(tmp_path / "bad")


def test_config_differences_names_keys():
    assert config_differences({"seed": 1, "n_bands": 4, "group": "p1"}, {"seed": 2, "n_bands": 4, "group": "pm"}) == [
        'group ("p1" vs "pm")', "seed (1 vs 2)"]
    assert config_differences({"r": (1, 2)}, {"r": [1, 2]}) == []


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_lock_refuses_a_live_writer_and_takes_over_a_dead_one(tmp_path):
    lock_path = tmp_path / "generate.lock"
    with WriterLock(lock_path):
        assert json.loads(lock_path.read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
        with pytest.raises(PhotosslError, match="another photossl generate .* is writing to"):
            WriterLock(lock_path).acquire()
    assert not lock_path.exists()

    lock_path.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    warnings = []
    with WriterLock(lock_path, on_warning=warnings.append):
        assert json.loads(lock_path.read_text())["pid"] == os.getpid()
    assert len(warnings) == 1 and "stale lock" in warnings[0]

    if os.path.exists("/proc/self/stat"):
        # a writer killed while its parent has not reaped it yet (a zombie) is dead too
        zombie = subprocess.Popen([sys.executable, "-c", "pass"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _is_zombie(zombie.pid):
            time.sleep(0.01)
        lock_path.write_text(json.dumps({"pid": zombie.pid, "host": socket.gethostname()}))
        with WriterLock(lock_path, on_warning=warnings.append):
            pass
        zombie.wait()
        assert len(warnings) == 2

    lock_path.write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.example"}))
    with pytest.raises(PhotosslError, match=f"host elsewhere.example.*delete {lock_path}"):
        WriterLock(lock_path).acquire()
    lock_path.write_text("")
    with pytest.raises(PhotosslError, match="unreadable"):
        WriterLock(lock_path).acquire()


def test_a_waiting_lock_takes_over_when_the_live_writer_is_done(tmp_path):
    lock_path = tmp_path / "generate.lock"
    writer = WriterLock(lock_path).acquire()
    told, taken = [], []
    waiter = threading.Thread(
        target=lambda: taken.append(WriterLock(lock_path, on_warning=told.append, wait=True, poll=0.01).acquire()))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and not taken  # the writer is alive: it waits, checking again and again
    writer.release()
    waiter.join(30)
    assert taken and json.loads(lock_path.read_text())["pid"] == os.getpid()
    taken[0].release()
    assert len(told) == 1 and "waiting for it to finish" in told[0] and str(lock_path) in told[0]


def test_bundled_dataset():
    path = bundled_dataset_path()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size <= 10 * 2**20
    ds = open_dataset(path)
    assert ds.sizes["cell"] == 512 and ds.eps.shape == (512, 32, 32) and ds.dos.shape == (512, 400)
    assert np.all(np.isfinite(ds.dos_eldiff.values))
    assert json.loads(ds.attrs["config"])["preset"] == "sibcl-p1"
    with pytest.raises(PhotosslError, match="not found"):
        bundled_dataset_path("no-such-set")
