"""``photossl generate`` when a write fails (full disk, refused permission): one line naming the file, the chunks and
manifest already written stay valid, no temporary file is left, and a rerun gives the reference dataset byte for
byte."""

import errno
import json
import os

import pytest
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.data import open_dataset

TINY_CLI = ["--size", "16", "--grid-size", "7", "--n-bands", "5", "--solver-option", "cutoff=3"]


def _args(out):
    return ["generate", "--preset", "sibcl-p1", "--n-cells", "6", "--chunk-size", "2", "--seed", "5", *TINY_CLI,
            "--workers", "1", "--no-progress", "--out", str(out)]


def _chunks(directory):
    manifest = json.loads((directory / "manifest.json").read_text())
    return {name: (entry["start"], entry["stop"], entry["sha256"]) for name, entry in manifest["chunks"].items()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("generate-faults") / "ds"
    result = CliRunner().invoke(cli, _args(out))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


@pytest.mark.parametrize("pattern, nth, code, failing", [
    ("chunk-*.nc", 2, errno.ENOSPC, "chunks/chunk-00000002.nc"),
    ("manifest.json", 3, errno.EACCES, "manifest.json"),
], ids=["chunk-ENOSPC", "manifest-EACCES"])
def test_a_failed_write_stops_generate_and_a_rerun_completes_it(uninterrupted, hashes, tmp_path, fail_write,
                                                                one_line_error, pattern, nth, code, failing):
    out = tmp_path / "ds"
    fail_write(pattern, nth=nth, code=code)
    one_line_error(CliRunner().invoke(cli, _args(out)), f"could not write {out / failing}: {os.strerror(code)}")
    assert not [p for p in out.rglob(".*")], "a temporary file was left behind"
    assert not (out / "generate.lock").exists()
    before = open_dataset(out, allow_incomplete=True)  # what was written before the fault is intact and verified
    assert 0 < before.sizes["cell"] < 6

    fail_write(None)
    result = CliRunner().invoke(cli, _args(out))
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert len(hashes(out)) == 3 and hashes(out) == hashes(uninterrupted)  # byte-identical chunks
    assert _chunks(out) == _chunks(uninterrupted)
