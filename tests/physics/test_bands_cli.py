"""``photossl bands``: the band diagram and DOS of one cell as files, checked against the empty lattice and the
textbook square lattice of dielectric rods; bad cells are one-line errors that write nothing."""

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from photossl.cli.main import cli

FAST = ["--n-bands", "4", "--points-per-segment", "4", "--grid-size", "5", "--cutoff", "3"]


def _bands(*args):
    return CliRunner().invoke(cli, ["bands", *map(str, args)])


def test_empty_lattice_bands_are_the_free_photon_cone(tmp_path):
    np.save(tmp_path / "air.npy", np.ones((16, 16)))
    result = _bands("--eps", tmp_path / "air.npy", "--polarization", "tm", *FAST, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"bands.png", "bands.nc", "bands.csv"}
    with xr.open_dataset(tmp_path / "out" / "bands.nc", engine="h5netcdf") as report:
        k = np.stack([report["k_x"].values, report["k_y"].values], axis=1)
        lowest = report["bands_tm"].values[:, 0]
    # omega a / 2 pi c = min over reciprocal vectors G of |k + G| (k in units of 2 pi / a)
    shifts = np.array([(i, j) for i in range(-2, 3) for j in range(-2, 3)])
    free = np.min(np.linalg.norm(k[:, None, :] + shifts[None], axis=2), axis=1)
    np.testing.assert_allclose(lowest, free, atol=1e-6)
    assert lowest[4] == pytest.approx(0.5) and lowest[8] == pytest.approx(np.sqrt(0.5))  # X and M


def test_dielectric_rods_open_the_textbook_tm_gap(tmp_path):
    # Joannopoulos et al., Photonic Crystals (2008), ch. 5: rods eps 8.9, r = 0.2a: TM gap 1-2 at about 0.32-0.44
    result = _bands("--cell", "rods", "--radius", "0.2", "--eps-high", "8.9", "--polarization", "tm",
                    "--n-bands", "3", "--points-per-segment", "6", "--grid-size", "5", "--cutoff", "5",
                    "--out", tmp_path / "rods")
    assert result.exit_code == 0, result.output
    with xr.open_dataset(tmp_path / "rods" / "bands.nc", engine="h5netcdf") as report:
        bands = report["bands_tm"].values
        gaps = report.attrs["gaps"]
    lower, upper = bands[:, 0].max(), bands[:, 1].min()
    assert 0.30 < lower < 0.34 and 0.42 < upper < 0.46
    assert gaps.startswith("tm 1-2:")


@pytest.mark.parametrize("eps, fragment", [
    (np.full((8, 8), np.nan), "NaN"),
    (np.zeros((8, 8)), "> 0"),
    (np.ones((2, 8, 8)), "one 2-D (N, N) cell"),
])
def test_a_bad_cell_is_a_one_line_error_that_writes_nothing(tmp_path, eps, fragment):
    np.save(tmp_path / "bad.npy", eps)
    result = _bands("--eps", tmp_path / "bad.npy", *FAST, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert fragment in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_missing_file_is_a_one_line_error(tmp_path):
    result = _bands("--eps", tmp_path / "nowhere.npy", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "permittivity file not found" in result.output
