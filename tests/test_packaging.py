"""What a non-editable install carries: the bundled dataset and the pipelines as package data, found with
importlib.resources, so the README's first commands run from any folder."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.config import resolve_config_file, shipped_pipelines
from photossl.data import bundled_dataset_path

REPO = Path(__file__).resolve().parents[1]


def test_pipelines_are_found_by_name_from_any_folder(tmp_path, monkeypatch, one_line_error):
    monkeypatch.chdir(tmp_path)
    assert {"dos-quick", "pretrain-quick", "dos-medium"} <= set(shipped_pipelines())
    for name in ("dos-quick", "dos-quick.yaml", "pipelines/dos-quick.yaml"):
        assert resolve_config_file(name).read_text() == (REPO / "pipelines" / "dos-quick.yaml").read_text(), name
    assert (bundled_dataset_path() / "manifest.json").exists()
    result = CliRunner().invoke(cli, ["study", "dos-quick", "--dry-run", "--out", str(tmp_path / "q")])
    assert result.exit_code == 0 and "dos-quick: data" in result.output and "36 cells" in result.output, result.output
    one_line_error(CliRunner().invoke(cli, ["study", "dos-quik", "--dry-run"]), "did you mean 'dos-quick'?")


@pytest.mark.slow
def test_a_wheel_install_runs_bands_and_finds_its_data(tmp_path):
    """Build the wheel, install it (no dependencies) into a fresh venv that borrows this environment's packages
    through PYTHONPATH, and run from outside the repository."""
    import shutil

    wheels, had_build = tmp_path / "wheels", (REPO / "build").exists()
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(wheels), str(REPO)], check=True, cwd=tmp_path)
    finally:
        if not had_build:  # setuptools builds in the source tree
            shutil.rmtree(REPO / "build", ignore_errors=True)
    (wheel,) = wheels.glob("photossl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "photossl/_data/sibcl-p1-tm-512/manifest.json" in names and "photossl/pipelines/dos-quick.yaml" in names
    assert sum(n.startswith("photossl/_data/sibcl-p1-tm-512/chunks/") for n in names) == 8
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    env = {**os.environ, "PYTHONPATH": site, "OMP_NUM_THREADS": "1"}
    run = tmp_path / "elsewhere"
    run.mkdir()
    probe = ("import photossl, photossl.data as d; from photossl.data import open_dataset;"
             "print(photossl.__file__); print(open_dataset(d.bundled_dataset_path()).sizes['cell'])")
    where, cells = subprocess.run([venv / "bin" / "python", "-c", probe], env=env, cwd=run, check=True,
                                  capture_output=True, text=True).stdout.split()
    assert where.startswith(str(venv)) and cells == "512"
    bands = subprocess.run([venv / "bin" / "photossl", "bands", "--out", "bands-out", "--n-bands", "4",
                            "--grid-size", "5", "--cutoff", "3", "--points-per-segment", "4"],
                           env=env, cwd=run, capture_output=True, text=True, check=False)
    assert bands.returncode == 0, bands.stderr
    assert {p.name for p in (run / "bands-out").iterdir()} == {"bands.png", "bands.nc", "bands.csv"}
    study = subprocess.run([venv / "bin" / "photossl", "study", "dos-quick", "--dry-run"], env=env, cwd=run,
                           capture_output=True, text=True, check=False)
    assert study.returncode == 0 and "36 cells" in study.stdout, study.stderr
