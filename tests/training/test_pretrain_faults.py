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
    line = one_line_error(_pretrain(tiny_dataset, run), after_log=True)  # after the epoch lines
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


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 3], lambda b: b"", lambda b: b"\x00garbage" * 50])
def test_a_damaged_checkpoint_is_one_line_naming_the_fix_and_is_left_alone(tiny_dataset, tmp_path, one_line_error,
                                                                         damage):
    run = tmp_path / "run"
    run.mkdir()
    damaged = damage(b"PK\x03\x04" + bytes(range(256)) * 40)
    (run / "checkpoint.pt").write_bytes(damaged)
    line = one_line_error(_pretrain(tiny_dataset, run, "--resume"),
                          f"{run / 'checkpoint.pt'} is not a readable photossl pretraining checkpoint",
                          "delete the file and rerun")
    assert "KeyError" not in line and "EOFError" not in line
    assert ((run / "checkpoint.pt").read_bytes() == damaged
            and sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"])


def test_ctrl_c_exits_130_marks_the_run_interrupted_and_resume_finishes(tiny_dataset, tmp_path, monkeypatch,
                                                                         one_line_error):
    from photossl.training import trainer

    real, calls = trainer._train_epoch, []

    def interrupt_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_train_epoch", interrupt_second_epoch)
    run = tmp_path / "run"
    result = _pretrain(tiny_dataset, run)
    assert result.exit_code == 130 and isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("epoch 1/2: loss ") and lines[0].endswith(" s")  # one persistent line per epoch
    assert "interrupted; the checkpoint holds 1 of 2 epochs, continue with --resume" in lines[-2]
    assert lines[-1].startswith("Error: interrupted")
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "interrupted" and record["epochs_completed"] == 1
    monkeypatch.undo()
    result = _pretrain(tiny_dataset, run, "--resume")
    assert result.exit_code == 0 and "epoch 2/2: loss" in result.output, result.output
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
