"""``photossl study`` when a write fails (full disk, refused permission): the study stops with one error line naming
the file (a failed write is not a failed cell to skip past), finished cells stay, no temporary file is left, and a
rerun ends with the results of an uninterrupted study."""

import csv
import errno
import os

import pytest
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli

# columns that differ between two identical studies: the clock, and where each one lives
VARYING = ("wall_time_s", "out", "finished")


def _study(config_file, out):
    return CliRunner().invoke(cli, ["study", str(config_file), "--out", str(out)])


def _results(out) -> list[dict]:
    with (out / "results.csv").open() as handle:
        return [{k: v for k, v in row.items() if k not in VARYING} for row in csv.DictReader(handle)]


@pytest.mark.parametrize("failing, code", [("model.npz", errno.ENOSPC), ("results.csv", errno.EACCES)])
def test_a_failed_write_stops_the_study_and_a_rerun_matches(tiny_study, tmp_path, fail_write, failing, code,
                                                             one_line_error):
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_study(methods=["supervised", "ridge"], budgets=[8], seeds=[0])))
    straight = tmp_path / "straight"
    result = _study(config_file, straight)
    assert result.exit_code == 0, result.output + repr(result.exception)

    out = tmp_path / "study"
    failed = fail_write(failing, code=code)
    result = _study(config_file, out)
    # the log lines of the work done before the fault, then one error line
    line = one_line_error(result, after_log=True)
    assert line == f"Error: could not write {failed[0]}: {os.strerror(code)}"
    assert failed[0].name == failing and not [p for p in out.rglob(".*")], "a temporary file was left behind"
    assert (out / "cells" / "supervised__b8__s0.json").exists()  # finished before the fault, kept

    fail_write(None)
    result = _study(config_file, out)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert _results(out) == _results(straight)
