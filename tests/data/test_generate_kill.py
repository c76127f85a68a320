"""kill -9 in the middle of `photossl generate`, then the same command again: the files of an uninterrupted run."""

import json
import os
import signal
import time

from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.data import open_dataset
from photossl.data.storage import dataset_sha256


def test_kill_then_resume_equals_an_uninterrupted_run(tmp_path, cli_process, reference_dataset, reference_args,
                                                       hashes):
    # killed: a real process with 2 workers; resumed: 1 worker; reference: uninterrupted, 1 worker in-process
    out = tmp_path / "killed"
    process = cli_process("generate", *reference_args(out, "--workers", 2))
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and json.loads(manifest.read_text())["chunks"]:
            break
        time.sleep(0.005)
    assert process.poll() is None, process.communicate(timeout=60)[0]
    # kill -9 the whole job (main process and its workers), as a scheduler or a shell does
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    state = json.loads(manifest.read_text())
    assert not state["complete"] and 1 <= len(state["chunks"]) < 12
    assert (out / "generate.lock").exists()  # a killed writer cannot clean up
    time.sleep(0.2)
    landed = hashes(out)
    time.sleep(0.5)
    assert hashes(out) == landed  # its workers died with it: nothing is written any more

    result = CliRunner().invoke(cli, ["generate", *reference_args(out, "--workers", 1)])
    assert result.exit_code == 0, result.output
    assert "took over the stale lock" in result.output and "resuming:" in result.output
    assert not (out / "generate.lock").exists()
    assert not list((out / "chunks").glob(".*"))  # no temporary files left
    assert hashes(out) == hashes(reference_dataset)  # bit-identical chunk files
    assert len(hashes(out)) == 12 and json.loads(manifest.read_text())["complete"]
    assert dataset_sha256(open_dataset(out)) == dataset_sha256(open_dataset(reference_dataset))
