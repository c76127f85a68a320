"""A tiny labelled dataset made by ``photossl generate`` (16-pixel cells, 7 x 7 k-grid, 5 bands: milliseconds a cell),
and a one-epoch pretraining run on it."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = {"size": 16, "grid_size": 7, "n_bands": 5, "solver_options": {"cutoff": 3.0}}


def make_tiny_dataset(out: Path, n_cells: int = 96) -> Path:
    from photossl.data.generate import generate_dataset, preset_config

    config = preset_config("sibcl-p1", n_cells=n_cells, chunk_size=48, seed=3, targets=("dos", "bands", "gaps"), **TINY)
    generate_dataset(config, out, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """96 cells: the default split gives 10 test, 10 validation and 76 labelled cells. Read-only."""
    return make_tiny_dataset(tmp_path_factory.mktemp("finetune-data") / "tiny")


@pytest.fixture(scope="session")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """A one-epoch SimCLR pretraining run on ``tiny_data``."""
    from photossl.training import make_config, pretrain

    run = tmp_path_factory.mktemp("finetune-pretrain") / "simclr"
    config = make_config({"data": str(tiny_data), "method": "simclr", "epochs": 1, "batch_size": 32,
                          "probe_every": 0, "progress": False, "threads": 1})
    pretrain(config, run)
    return run


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
