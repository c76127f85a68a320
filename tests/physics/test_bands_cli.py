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
        table = report["gaps_tm"].sel(band_pair=1).values
        assert report.attrs["path"] == "Γ-X-M-Γ"  # a 4-fold axis: the short path
        assert report.attrs["recipe_kind"] == "rods" and report.attrs["recipe_radius"] == 0.2
        assert report["dos_physical_tm"].dims == ("freq",) and "omega" in report.coords
    lower, upper = bands[:, 0].max(), bands[:, 1].min()
    assert 0.30 < lower < 0.34 and 0.42 < upper < 0.46
    assert gaps.startswith("tm 1-2:")
    assert table[0] == pytest.approx(lower, abs=0.01) and table[1] == pytest.approx(upper, abs=0.01)
    assert "TM gaps: bands 1-2 at ωa/2πc 0.3" in result.output


def test_a_stack_gapped_along_x_only_is_not_reported_gapped(tmp_path):
    # a p1 stack of layers, ε varying along x only: a TM gap for k along x, none for k along y
    from photossl.physics import solve_bands
    from photossl.physics.gaps import band_gaps

    profile = np.ones(16)
    profile[:5], profile[5:7] = 13.0, 4.0
    eps = np.repeat(profile[:, None], 16, axis=1)
    along_x = np.stack([np.linspace(0, 0.5, 9), np.zeros(9)], axis=1)
    assert band_gaps(solve_bands(eps, along_x, "tm", 4, cutoff=3.0), 1e-3)  # gapped along x
    np.save(tmp_path / "stack.npy", eps)
    result = _bands("--eps", tmp_path / "stack.npy", "--polarization", "tm", *FAST, "--dos-axis", "scaled",
                    "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "TM: no complete gap" in result.output
    with xr.open_dataset(tmp_path / "out" / "bands.nc", engine="h5netcdf") as report:
        assert report.attrs["path"] == "Γ-X-M-Γ-Y-M"  # no 4-fold axis: y is not x
        assert report.attrs["gaps"] == "none" and not report["gaps_tm"].values.any()
        assert report.attrs["recipe_source"] == "file" and len(report.attrs["recipe_file_sha256"]) == 64


@pytest.mark.parametrize("eps, fragment", [
    (np.full((8, 8), np.nan), "NaN"),
    (np.zeros((8, 8)), "> 0"),
    (np.ones((2, 8, 8)), "one 2-D (N, N) cell"),
    (np.full((8, 8), 4 + 0.5j), "is complex"),  # refused, not truncated to its real part
    (np.full((8, 8), "4.0"), "holds text"),
])
def test_a_bad_cell_is_a_one_line_error_that_writes_nothing(tmp_path, eps, fragment, one_line_error):
    np.save(tmp_path / "bad.npy", eps)
    result = _bands("--eps", tmp_path / "bad.npy", *FAST, "--out", tmp_path / "out")
    one_line_error(result, fragment)
    assert not (tmp_path / "out").exists()


def test_a_missing_file_is_a_one_line_error(tmp_path, one_line_error):
    result = _bands("--eps", tmp_path / "nowhere.npy", "--out", tmp_path / "out")
    one_line_error(result, "permittivity file not found")


@pytest.mark.parametrize("cutoff", ["0", "1"])
def test_a_cutoff_too_small_for_the_bands_blames_the_cutoff(tmp_path, cutoff, one_line_error):
    line = one_line_error(_bands("--cutoff", cutoff, "--n-bands", "4", "--out", tmp_path / "out"),
                          f"--cutoff {cutoff} keeps", "use a cutoff of 2 or more")
    assert not line.startswith("Error: n_bands") and not (tmp_path / "out").exists()


def test_accuracy_preset_is_used_and_recorded(tmp_path):
    """--accuracy picks a preset of photossl.physics.solver_options; --cutoff overrides its plane-wave cutoff."""
    from photossl.physics.solver_options import PRESETS

    result = _bands("--polarization", "te", "--accuracy", "standard", *FAST, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    with xr.open_dataset(tmp_path / "out" / "bands.nc", engine="h5netcdf") as report:
        recorded = report.attrs["solver_options"]
    expected = PRESETS["standard"].replace(cutoff=3.0, te_cutoff=None).as_dict()
    assert recorded == str(expected)
    bad = _bands("--accuracy", "ultra", "--out", tmp_path / "bad")
    assert bad.exit_code != 0 and "ultra" in bad.output
