"""``photossl import-sibcl``: a small file written here in the SIB-CL / E-SSL h5 layout converts exactly; bad input
gives one-line errors."""

import json

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.data.sibcl_import import import_sibcl
from photossl.errors import PhotosslError

SIZE, GRID, N_BANDS = 8, 5, 4
FREQ500 = np.linspace(0, 1.2, 500)


def reference_kgrid(n: int) -> np.ndarray:
    """The reference's k-points in file order (np.meshgrid(kx, ky) raveled: k_x fastest)."""
    axis = np.linspace(-0.5 + 0.5 / n, 0.5 - 0.5 / n, n)
    gx, gy = np.meshgrid(axis, axis)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def cell_data(rng, key: int) -> dict:
    eps_in, eps_out = rng.uniform(1, 20, 2)
    filling = rng.uniform(0.1, 0.9)
    eps = np.where(rng.random((SIZE, SIZE)) < filling, eps_out, eps_in).astype(np.float32)
    kpoints = reference_kgrid(GRID)
    # bands that depend on k in a known way, so that any reordering mistake shows
    efreq = (np.arange(1, N_BANDS + 1)[None, :] * 0.1 + kpoints[:, :1] + 2 * kpoints[:, 1:] + key).astype(np.float32)
    grpvel = np.stack([np.broadcast_to(kpoints[:, :1], efreq.shape), np.broadcast_to(kpoints[:, 1:], efreq.shape),
                       np.zeros_like(efreq)], axis=-1).astype(np.float32)
    dos = (rng.random(500) * 5 + 2 * np.pi * FREQ500 * np.sqrt(eps.mean())).astype(np.float32)
    dosn = (dos / np.sqrt(eps.astype(np.float64).mean())).astype(np.float32)
    return {
        "unitcell/mpbepsimage": eps,
        "unitcell/inputepsimage": eps,
        "unitcell/epsin": np.float32(eps_in),
        "unitcell/epsout": np.float32(eps_out),
        "unitcell/epsavg": np.float32(filling * eps_out + (1 - filling) * eps_in),
        "unitcell/filling": np.float32(filling),
        "unitcell/uclevel": np.float32(rng.normal()),
        "unitcell/uccoefs": rng.random(9) * np.exp(2j * np.pi * rng.random(9)),
        "mpbcal/efreq": efreq,
        "mpbcal/grpvel": grpvel,
        "mpbcal/bandgap": np.ones((key % 3, 3), dtype=np.float32),  # a varying number of gaps, as published
        "mpbcal/DOS": dos,
        "mpbcal/DOSeldiff": dos - 2 * np.pi * FREQ500,
        "mpbcal/DOSn": dosn,
        "mpbcal/DOSeldiffn": (dosn - 2 * np.pi * FREQ500).astype(np.float32),
    }


def write_sibcl(path, n_cells=6, first_key=0, drop=(), seed=0, edit=None) -> dict:
    """Write an h5 file in the published layout; returns {key: cell data}. ``edit(key, data)`` may change a cell."""
    rng = np.random.default_rng(seed)
    cells = {}
    with h5py.File(path, "w") as handle:
        nvec = np.arange(-1, 2)
        gx, gy = np.meshgrid(nvec, nvec)
        handle.create_dataset("universal/ucgvecs", data=np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))
        handle.create_dataset("universal/rvecs", data=np.eye(2, dtype=np.float32))
        for key in range(first_key, first_key + n_cells):
            data = cell_data(rng, key)
            if edit is not None:
                edit(key, data)
            cells[key] = data
            for group, value in data.items():
                if group not in drop:
                    handle.create_dataset(f"{group}/{key}", data=value)
    return cells


def invoke(*args):
    return CliRunner().invoke(cli, ["import-sibcl", *map(str, args), "--no-progress"])


def open_chunks(out):
    manifest = json.loads((out / "manifest.json").read_text())
    parts = [xr.open_dataset(out / "chunks" / name, engine="h5netcdf") for name in sorted(manifest["chunks"])]
    return manifest, parts


def test_converts_every_variable(tmp_path):
    source = tmp_path / "mf1-tm.h5"
    cells = write_sibcl(source)
    out = tmp_path / "ds"
    result = invoke(source, "--out", out, "--chunk-size", 4)
    assert result.exit_code == 0, result.output
    assert "imported 6 cells" in result.output

    manifest, parts = open_chunks(out)
    assert manifest["complete"] is True and manifest["n_cells"] == 6
    assert [(e["start"], e["stop"]) for e in manifest["chunks"].values()] == [(0, 4), (4, 6)]
    assert manifest["config"]["solver"] == "mpb (imported)" and manifest["config"]["polarizations"] == ["tm"]
    from photossl.data.storage import file_sha256

    for name, entry in manifest["chunks"].items():
        assert file_sha256(out / "chunks" / name) == entry["sha256"]

    kpoints = reference_kgrid(GRID)
    for part in parts:
        assert part.attrs["solver"] == "mpb (imported)" and part.attrs["source_file"] == "mf1-tm.h5"
        np.testing.assert_allclose(part["freq"].values, FREQ500[:400])
        for position, cell in enumerate(part["cell"].values):
            data = cells[int(cell)]  # keys start at 0 here, so cell i is key i
            assert int(part["source_key"].values[position]) == cell
            np.testing.assert_array_equal(part["eps"].values[position], data["unitcell/mpbepsimage"])
            assert part["eps"].dtype == np.float32
            np.testing.assert_allclose(part["dos"].values[position], data["mpbcal/DOSn"][:400], rtol=1e-6)
            np.testing.assert_allclose(part["dos_tm"].values[position], data["mpbcal/DOSn"][:400], rtol=1e-6)
            np.testing.assert_allclose(part["dos_eldiff"].values[position], data["mpbcal/DOSeldiffn"][:400], rtol=1e-6)
            eps_mean = data["unitcell/mpbepsimage"].astype(np.float64).mean()
            np.testing.assert_allclose(part["eps_mean"].values[position], eps_mean, rtol=1e-12)
            for group, name in [("unitcell/epsin", "eps_in"), ("unitcell/epsout", "eps_out"),
                                ("unitcell/filling", "filling"), ("unitcell/epsavg", "eps_avg_nominal")]:
                np.testing.assert_allclose(part[name].values[position], data[group], rtol=1e-6)
            # bands are reordered to photossl's k_x-slowest grid: match them through the k coordinates
            bands = part["bands_tm"].values[position]
            k_stored = np.stack([part["k_x"].values, part["k_y"].values], axis=1)
            order = [int(np.argmin(np.abs(kpoints - k).sum(1))) for k in k_stored]
            np.testing.assert_allclose(k_stored, kpoints[order], atol=1e-12)
            np.testing.assert_allclose(bands, data["mpbcal/efreq"][order], rtol=1e-6)
            velocity = part["group_velocity_tm"].values[position]
            np.testing.assert_allclose(velocity[:, 0, :], k_stored, atol=1e-6)
            gaps = part["gaps_tm"].values[position]
            assert gaps.shape == (N_BANDS - 1, 3)
            np.testing.assert_allclose(gaps[:, 0], data["mpbcal/efreq"].max(axis=0)[:-1], rtol=1e-6)
            # coefficient c_G sits at grid position G + 1
            coefs = part["coef_real"].values[position] + 1j * part["coef_imag"].values[position]
            assert coefs[2, 1] == pytest.approx(data["unitcell/uccoefs"][5])  # ucgvecs[5] = (1, 0)
            assert coefs[0, 2] == pytest.approx(data["unitcell/uccoefs"][6])  # ucgvecs[6] = (-1, 1)
        part.close()
    from photossl.physics.kpoints import sibcl_grid

    np.testing.assert_allclose(k_stored, sibcl_grid(GRID, margin=0.5 / GRID))


def test_open_dataset_and_loader_read_the_import(tmp_path):
    from photossl.data.loaders import CellDataset
    from photossl.data.storage import open_dataset

    source = tmp_path / "set-tm.h5"
    cells = write_sibcl(source, n_cells=5)
    import_sibcl(source, tmp_path / "ds", chunk_size=2)
    dataset = open_dataset(tmp_path / "ds")
    assert dataset.sizes["cell"] == 5 and dataset["eps"].dims == ("cell", "x", "y")
    data = CellDataset(tmp_path / "ds", target="dos_eldiff", indices=[4, 0])
    np.testing.assert_allclose(data[0][1].numpy(), cells[4]["mpbcal/DOSeldiffn"][:400], rtol=1e-6)
    np.testing.assert_allclose(data[1][0][0].numpy(), (cells[0]["unitcell/mpbepsimage"] - 1) / 19, rtol=1e-6)


def test_one_based_keys_are_ordered_numerically(tmp_path):
    source = tmp_path / "one-based.h5"
    cells = write_sibcl(source, n_cells=11, first_key=1)
    result = import_sibcl(source, tmp_path / "ds", chunk_size=100)
    assert result.n_cells == 11
    _, (part,) = open_chunks(tmp_path / "ds")
    assert part["source_key"].values.tolist() == list(range(1, 12))
    assert part["cell"].values.tolist() == list(range(11))
    np.testing.assert_array_equal(part["eps"].values[9], cells[10]["unitcell/mpbepsimage"])
    part.close()


def test_dos_is_derived_when_only_the_raw_dos_is_published(tmp_path):
    source = tmp_path / "raw.h5"
    cells = write_sibcl(source, n_cells=3, drop=("mpbcal/DOSn", "mpbcal/DOSeldiffn"))
    import_sibcl(source, tmp_path / "ds")
    _, (part,) = open_chunks(tmp_path / "ds")
    for i in range(3):
        expected = cells[i]["mpbcal/DOS"][:400] / np.sqrt(cells[i]["unitcell/mpbepsimage"].astype(np.float64).mean())
        np.testing.assert_allclose(part["dos"].values[i], expected, rtol=1e-6)
        np.testing.assert_allclose(part["dos_eldiff"].values[i], expected - 2 * np.pi * FREQ500[:400], rtol=1e-5,
                                   atol=1e-6)
    part.close()


def test_missing_optional_groups_are_skipped(tmp_path):
    source = tmp_path / "minimal.h5"
    optional = ["unitcell/epsin", "unitcell/epsout", "unitcell/epsavg", "unitcell/filling", "unitcell/uclevel",
                "unitcell/uccoefs", "mpbcal/efreq", "mpbcal/grpvel"]
    write_sibcl(source, n_cells=3, drop=optional)
    result = invoke(source, "--out", tmp_path / "ds")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "mpbcal/efreq" in result.output
    manifest, (part,) = open_chunks(tmp_path / "ds")
    assert "bands_tm" not in part and "eps_in" not in part and "dos" in part and "eps" in part
    assert set(optional) <= set(manifest["config"]["skipped_groups"])
    part.close()


@pytest.mark.parametrize("bad_value, words", [(np.nan, "NaN"), (0.0, "<= 0"), (-3.0, "<= 0")])
def test_bad_permittivity_is_a_one_line_error_naming_the_cell(tmp_path, bad_value, words, one_line_error):
    def poison(key, data):
        if key == 3:
            data["unitcell/mpbepsimage"][2, 5] = bad_value

    source = tmp_path / "bad.h5"
    write_sibcl(source, edit=poison)
    out = tmp_path / "ds"
    result = invoke(source, "--out", out, "--chunk-size", 2)
    one_line_error(result, "cell 3", words)
    assert not (out / "manifest.json").exists() and not (out / "chunks").exists()  # nothing half-written


@pytest.mark.parametrize("group", ["unitcell/mpbepsimage", "mpbcal/DOS"])
def test_missing_required_group_is_named(tmp_path, group, one_line_error):
    drop = (group,) if group != "mpbcal/DOS" else ("mpbcal/DOS", "mpbcal/DOSn")
    source = tmp_path / "missing.h5"
    write_sibcl(source, n_cells=2, drop=drop)
    one_line_error(invoke(source, "--out", tmp_path / "ds"), group)


def test_missing_entry_of_one_cell_is_named(tmp_path, one_line_error):
    source = tmp_path / "holes.h5"
    write_sibcl(source, n_cells=4)
    with h5py.File(source, "a") as handle:
        del handle["mpbcal/efreq/2"]
    one_line_error(invoke(source, "--out", tmp_path / "ds"), "mpbcal/efreq", "cell 2")


def test_truncated_and_foreign_files_are_one_line_errors(tmp_path, one_line_error):
    source = tmp_path / "cut.h5"
    write_sibcl(source, n_cells=4)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    one_line_error(invoke(source, "--out", tmp_path / "ds"), "cut.h5", "cannot read")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    one_line_error(invoke(text, "--out", tmp_path / "ds"), "notes.h5")
    one_line_error(invoke(tmp_path / "absent.h5", "--out", tmp_path / "ds"), "not found")
    assert not (tmp_path / "ds").exists()


def test_existing_output_is_refused_unless_same_import_or_overwrite(tmp_path, one_line_error):
    first, second = tmp_path / "a.h5", tmp_path / "b.h5"
    write_sibcl(first, n_cells=3, seed=1)
    cells_b = write_sibcl(second, n_cells=4, seed=2)
    out = tmp_path / "ds"
    assert invoke(first, "--out", out).exit_code == 0
    chunk = out / "chunks" / "chunk-00000000.nc"
    stamp = chunk.stat().st_mtime_ns

    again = invoke(first, "--out", out)
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output
    assert chunk.stat().st_mtime_ns == stamp

    one_line_error(invoke(second, "--out", out), "--overwrite")
    one_line_error(invoke(first, "--out", out, "--chunk-size", 2), "--overwrite")
    (out / "splits-seed0.json").write_text("{}")
    replaced = invoke(second, "--out", out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    manifest, (part,) = open_chunks(out)
    assert manifest["n_cells"] == 4 and not (out / "splits-seed0.json").exists()
    np.testing.assert_array_equal(part["eps"].values[3], cells_b[3]["unitcell/mpbepsimage"])
    part.close()

    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    one_line_error(invoke(first, "--out", other), "not a photossl dataset")
    one_line_error(invoke(first, "--out", other, "--overwrite"), "not a photossl dataset")
    assert (other / "keep.txt").read_text() == "mine"


def test_interrupted_or_damaged_import_is_redone(tmp_path):
    source = tmp_path / "a.h5"
    write_sibcl(source, n_cells=5)
    out = tmp_path / "ds"
    import_sibcl(source, out, chunk_size=2)
    manifest = json.loads((out / "manifest.json").read_text())
    good = (out / "chunks" / "chunk-00000002.nc").read_bytes()
    (out / "chunks" / "chunk-00000002.nc").write_bytes(good[:100])
    result = import_sibcl(source, out, chunk_size=2)
    assert not result.already_done
    assert (out / "chunks" / "chunk-00000002.nc").read_bytes() == good
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_a_running_writer_is_refused(tmp_path):
    import os
    import socket

    source = tmp_path / "a.h5"
    write_sibcl(source, n_cells=2)
    out = tmp_path / "ds"
    out.mkdir()
    (out / "generate.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    with pytest.raises(PhotosslError, match="writing to"):
        import_sibcl(source, out)
    assert not (out / "manifest.json").exists()


def test_bad_arguments(tmp_path):
    source = tmp_path / "a.h5"
    write_sibcl(source, n_cells=2)
    with pytest.raises(PhotosslError, match="polarization"):
        import_sibcl(source, tmp_path / "ds", polarization="xy")
    with pytest.raises(PhotosslError, match="chunk_size"):
        import_sibcl(source, tmp_path / "ds", chunk_size=0)


def test_unlabelled_files_need_no_dos_flag(tmp_path, one_line_error):
    source = tmp_path / "ul-tm.h5"
    dos_groups = ("mpbcal/DOS", "mpbcal/DOSn", "mpbcal/DOSeldiff", "mpbcal/DOSeldiffn", "mpbcal/efreq",
                  "mpbcal/grpvel", "mpbcal/bandgap")
    cells = write_sibcl(source, n_cells=3, drop=dos_groups)
    one_line_error(invoke(source, "--out", tmp_path / "ds"), "mpbcal/DOS", "--no-dos")
    result = invoke(source, "--out", tmp_path / "ds", "--no-dos")
    assert result.exit_code == 0, result.output
    manifest, (part,) = open_chunks(tmp_path / "ds")
    assert manifest["config"]["targets"] == [] and "dos" not in part and "freq" not in part.coords
    np.testing.assert_array_equal(part["eps"].values[2], cells[2]["unitcell/mpbepsimage"])
    part.close()
