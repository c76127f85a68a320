"""``photossl finetune`` and ``photossl predict`` when a write fails (full disk, refused permission): one line naming
the file, the previous file intact, no temporary file, and a rerun gives what an uninterrupted run gives."""

import errno
import io
import json
import os

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from photossl.cli.main import cli

FAST = ["--epochs", "1", "--threads", "1", "--no-progress", "--head-dims", "8", "--budget", "8", "--seed", "1"]
# what differs between two identical runs: the clock
TIMING = ("wall_time_s",)


def _finetune(data, out, *extra):
    return CliRunner().invoke(cli, ["finetune", "--data", str(data), "--out", str(out), *FAST, *extra])


def _metrics(ft) -> dict:
    record = json.loads((ft / "metrics.json").read_text())
    return {key: value for key, value in record.items() if key not in TIMING}


def _no_temporary_files(folder) -> bool:
    return not [p for p in folder.rglob(".*")]


@pytest.mark.parametrize("extra, failing, code", [
    ((), "model.pt", errno.ENOSPC),
    (("--baseline", "ridge"), "model.npz", errno.EACCES),
], ids=["network-model-ENOSPC", "ridge-model-EACCES"])
def test_a_failed_write_stops_finetune_and_a_rerun_matches(tiny_data, tmp_path, fail_write, one_line_error, extra,
                                                           failing, code):
    reference = tmp_path / "reference"
    result = _finetune(tiny_data, reference, *extra)
    assert result.exit_code == 0, result.output + repr(result.exception)

    ft = tmp_path / "ft"
    fail_write(failing, code=code)
    one_line_error(_finetune(tiny_data, ft, *extra), f"could not write {ft / failing}: {os.strerror(code)}")
    assert not (ft / "metrics.json").exists() and _no_temporary_files(ft)
    fail_write(None)
    result = _finetune(tiny_data, ft, *extra)  # no metrics.json: the unfinished run is redone without --overwrite
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert {**_metrics(ft), "data": None} == {**_metrics(reference), "data": None}
    assert (ft / "history.csv").read_text().count("\n") == (reference / "history.csv").read_text().count("\n")


def test_a_failed_write_keeps_the_previous_predictions(tiny_data, tmp_path, fail_write, one_line_error):
    ft = tmp_path / "ft"
    assert _finetune(tiny_data, ft, "--baseline", "ridge").exit_code == 0
    preds = tmp_path / "preds.nc"
    command = ["predict", "--model", str(ft), "--data", str(tiny_data), "--out", str(preds)]
    assert CliRunner().invoke(cli, command).exit_code == 0
    before = preds.read_bytes()
    for code in (errno.ENOSPC, errno.EACCES):
        fail_write("preds.nc", code=code)
        one_line_error(CliRunner().invoke(cli, command), f"could not write {preds}: {os.strerror(code)}")
        assert preds.read_bytes() == before and _no_temporary_files(tmp_path)
    fail_write(None)
    preds.unlink()
    assert CliRunner().invoke(cli, command).exit_code == 0
    # the rerun writes the same predictions; only the provenance's time stamp differs
    again, first = xr.load_dataset(preds, engine="h5netcdf"), xr.load_dataset(io.BytesIO(before), engine="h5netcdf")
    assert again.drop_attrs().identical(first.drop_attrs())
    assert set(again.attrs) == set(first.attrs)
    assert all(np.array_equal(again.attrs[k], first.attrs[k]) for k in first.attrs if k != "created")
