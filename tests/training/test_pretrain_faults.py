"""``photossl pretrain`` when a write fails (full disk, refused permission): one line naming the file, the last good
checkpoint intact, no temporary file, and ``--resume`` then ends with the weights of an uninterrupted run."""

import errno
import json
import os

import pytest
import torch
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.training import load_checkpoint

# timings differ between two identical runs
CLOCK = ("samples_per_s", "augment_share", "epoch_time_s")


def _pretrain(data, run, *extra):
    return CliRunner().invoke(cli, ["pretrain", "--data", str(data), "--method", "simclr", "--epochs", "2",
                                    "--batch-size", "32", "--limit-samples", "32", "--probe-every", "0",
                                    "--checkpoint-every", "1", "--threads", "1", "--no-progress", "--out", str(run),
                                    *extra])


def _rows(run) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in CLOCK} for row in rows]


@pytest.mark.parametrize("failing, code", [("checkpoint.pt", errno.ENOSPC), ("metrics.jsonl", errno.EACCES)])
def test_a_failed_write_keeps_the_last_checkpoint_and_resume_finishes(tiny_dataset, tmp_path, fail_write,
                                                                      one_line_error, monkeypatch, failing, code):
    straight = tmp_path / "straight"
    result = _pretrain(tiny_dataset, straight)
    assert result.exit_code == 0, result.output + repr(result.exception)

    run = tmp_path / "run"
    if failing == "checkpoint.pt":  # the second epoch's checkpoint
        fail_write(failing, nth=2, code=code)
    else:  # the second epoch's log row: an append, cut back on failure
        import photossl.files as files

        real_open, calls = open, []

        def refuse_second_append(path, mode="r", *args, **kwargs):
            if "a" in mode and os.path.basename(path) == failing:
                calls.append(path)
                if len(calls) == 2:
                    raise PermissionError(code, os.strerror(code), str(path))
            return real_open(path, mode, *args, **kwargs)

        monkeypatch.setattr(files, "open", refuse_second_append, raising=False)
    line = one_line_error(_pretrain(tiny_dataset, run))
    assert line == f"Error: could not write {run / failing}: {os.strerror(code)}"
    assert load_checkpoint(run)["epoch"] == 1  # the last good checkpoint
    assert not [p for p in run.rglob(".*")], "a temporary file was left behind"

    fail_write(None)
    monkeypatch.undo()
    result = _pretrain(tiny_dataset, run, "--resume")
    assert result.exit_code == 0, result.output + repr(result.exception)
    a, b = load_checkpoint(straight), load_checkpoint(run)
    assert b["epoch"] == 2 and a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][key], b["model"][key]) for key in a["model"])
    assert _rows(run) == _rows(straight)
