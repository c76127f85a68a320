"""A tiny dataset and a tiny study config: three methods, two budgets, two seeds, one-epoch runs."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = {"size": 16, "grid_size": 7, "n_bands": 5, "solver_options": {"cutoff": 3.0}}


@pytest.fixture(scope="session")
def study_data(tmp_path_factory) -> Path:
    """80 cells with DOS and gaps (default split: 8 test, 8 validation, 64 labelled). Read-only."""
    from photossl.data.generate import generate_dataset, preset_config

    out = tmp_path_factory.mktemp("study-data") / "tiny"
    config = preset_config("sibcl-p1", n_cells=80, chunk_size=40, seed=4, targets=("dos", "gaps"), **TINY)
    generate_dataset(config, out, workers=1, progress=False)
    return out


@pytest.fixture
def tiny_settings() -> dict:
    """Generate-config keys that make a cell take milliseconds."""
    return dict(TINY)


@pytest.fixture
def tiny_study(study_data):
    """``tiny_study(**overrides)``: a config mapping for a study that runs in seconds."""

    def make(**overrides) -> dict:
        return {
            "name": "tiny",
            "data": str(study_data),
            "methods": ["supervised", "simclr", "ridge"],
            "pretrain": {"epochs": 1, "batch_size": 32, "probe_every": 0},
            "finetune": {"epochs": 1, "head_dims": [16], "patience": 0},
            "budgets": [8, 16],
            "seeds": [0, 1],
            "diagnostics": False,
            "figures": False,
            "threads": 1,
            "progress": False,
            # each cell alone, through execute.finetune (which tests replace); test_study_ensemble.py stacks them
            "finetune_ensemble": 1,
            **overrides,
        }

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs on one torch thread (tests/conftest.py)."""
