import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photossl.data.storage import file_sha256

# Small enough that a cell takes milliseconds: 16-pixel cells, a 7 x 7 k-grid, 5 bands, |G| <= 3.
TINY = {"size": 16, "grid_size": 7, "n_bands": 5, "solver_options": {"cutoff": 3.0}}
TINY_CLI = ["--size", "16", "--grid-size", "7", "--n-bands", "5", "--solver-option", "cutoff=3"]
# The reference dataset: 24 cells in 12 chunks.
REFERENCE = {"n_cells": 24, "chunk_size": 2, "seed": 5}


@pytest.fixture
def tiny_config():
    """``tiny_config(preset="sibcl-p1", **overrides)``: a GenerateConfig with the TINY accuracy settings."""
    from photossl.data.generate import preset_config

    def make(preset: str = "sibcl-p1", **overrides):
        return preset_config(preset, **{**TINY, **overrides})

    return make


@pytest.fixture(scope="session")
def reference_dataset(tmp_path_factory):
    """The reference dataset, complete, written by one in-process worker. Read-only: copy it to modify it."""
    from photossl.data.generate import generate_dataset, preset_config

    out = tmp_path_factory.mktemp("reference") / "ds"
    generate_dataset(preset_config("sibcl-p1", **REFERENCE, **TINY), out, workers=1, progress=False)
    return out


@pytest.fixture
def reference_args():
    """``reference_args(out, *extra)``: `photossl generate` arguments that make the reference dataset in ``out``."""

    def args(out, *extra) -> list[str]:
        return ["--preset", "sibcl-p1", "--n-cells", str(REFERENCE["n_cells"]), "--chunk-size",
                str(REFERENCE["chunk_size"]), "--seed", str(REFERENCE["seed"]), *TINY_CLI, "--out", str(out),
                "--no-progress", *map(str, extra)]

    return args


@pytest.fixture
def copy_dataset(tmp_path):
    """``copy_dataset(src)``: a private copy of a dataset directory."""

    def copy(src: Path) -> Path:
        dst = tmp_path / f"copy-{Path(src).name}"
        shutil.copytree(src, dst)
        return dst

    return copy


@pytest.fixture
def hashes():
    """``hashes(dir)``: sha256 of every chunk file of a dataset directory, by file name."""

    def chunk_hashes(directory: Path) -> dict[str, str]:
        return {p.name: file_sha256(p) for p in sorted((Path(directory) / "chunks").glob("chunk-*.nc"))}

    return chunk_hashes


@pytest.fixture
def cli_process():
    """``cli_process(*args)``: start ``photossl <args>`` as a real subprocess (stdout and stderr piped together)."""

    def start(*args: str) -> subprocess.Popen:
        command = [sys.executable, "-c", "from photossl.cli.main import cli; cli()", *map(str, args)]
        # its own process group, so a test can kill the job with its workers the way a scheduler or a shell does
        return subprocess.Popen(command, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    return start
