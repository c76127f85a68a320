"""Tiny photossl datasets written in the on-disk layout that ``photossl generate`` produces."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr


def write_tiny_dataset(directory: Path, n_cells: int = 64, size: int = 16, seed: int = 0, chunk: int = 32) -> Path:
    """Random two-material cells with a DOS-like target that depends on them (so a probe has signal)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "chunks").mkdir(exist_ok=True)
    x = np.arange(size) / size
    freq = np.linspace(0, 0.9595, 400)
    chunks = {}
    for start in range(0, n_cells, chunk):
        stop = min(n_cells, start + chunk)
        n = stop - start
        phase = rng.uniform(0, 2 * np.pi, (n, 2))
        field = np.cos(2 * np.pi * x[None, :, None] + phase[:, :1, None]) + np.cos(
            2 * np.pi * x[None, None, :] + phase[:, 1:, None]
        )
        level = rng.uniform(-1.5, 1.5, n)
        eps_in, eps_out = rng.uniform(1, 20, n), rng.uniform(1, 20, n)
        inside = field > level[:, None, None]
        eps = np.where(inside, eps_in[:, None, None], eps_out[:, None, None]).astype(np.float32)
        fill = inside.mean(axis=(1, 2))
        mean_eps = eps.mean(axis=(1, 2))
        dos = (2 * np.pi * freq[None] * (1 + 0.1 * np.sin(freq[None] * mean_eps[:, None]))).astype(np.float32)
        dos_eldiff = (dos - 2 * np.pi * freq[None] + fill[:, None] * np.cos(5 * freq[None])).astype(np.float32)
        ds = xr.Dataset(
            {
                "eps": (("cell", "x", "y"), eps),
                "filling": (("cell",), fill),
                "dos": (("cell", "freq"), dos),
                "dos_eldiff": (("cell", "freq"), dos_eldiff),
            },
            coords={"cell": np.arange(start, stop, dtype=np.int64), "freq": freq},
            attrs={"photossl_version": "test", "preset": "tiny"},
        )
        name = f"chunk-{start:08d}.nc"
        path = directory / "chunks" / name
        ds.to_netcdf(path, engine="h5netcdf")
        chunks[name] = {"start": start, "stop": stop, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    manifest = {
        "format": "photossl-dataset",
        "format_version": 1,
        "photossl_version": "test",
        "config": {"preset": "tiny", "seed": seed, "n_cells": n_cells, "grid_size": size, "chunk_size": chunk},
        "n_cells": n_cells,
        "chunk_size": chunk,
        "chunks": chunks,
        "complete": True,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="session")
def tiny_surrogate(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "surrogate", n_cells=32, seed=1)


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
