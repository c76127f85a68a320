"""A fine-tuning run killed while it trains goes on from its latest saved epoch and ends where an uninterrupted run
ends, bit for bit on the CPU; a resume file of other settings, or one that cannot be read, is ignored."""

import csv
import json

import pytest
import torch

import photossl.finetune.resume as resume_module
import photossl.finetune.trainer as trainer_module
from photossl.finetune import finetune, make_finetune_config
from photossl.finetune.resume import RESUME_FILE

TIMING = ("wall_time_s", "wall_time_before_resume_s", "resumed_at_epoch")


def _config(data, **overrides):
    return make_finetune_config({"data": str(data), "budget": 24, "seed": 1, "epochs": 6, "patience": 0,
                                 "head_dims": [16], "batch_size": 8, "threads": 1, "progress": False,
                                 **overrides})


def _outcome(ft):
    metrics = {k: v for k, v in json.loads((ft / "metrics.json").read_text()).items() if k not in TIMING}
    with open(ft / "history.csv") as handle:
        history = [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in csv.DictReader(handle)]
    state = torch.load(ft / "model.pt", weights_only=True)["state"]
    return metrics, history, state


def _same(a, b) -> bool:
    return a[0] == b[0] and a[1] == b[1] and a[2].keys() == b[2].keys() and all(
        torch.equal(a[2][k], b[2][k]) for k in a[2])


@pytest.fixture
def save_every_epoch(monkeypatch):
    monkeypatch.setattr(resume_module, "RESUME_EVERY_S", 0.0)


def _kill_at_validation(monkeypatch, call: int):
    """Make the ``call``-th validation of the run raise, as a kill during that epoch would stop it."""
    evaluate, calls = trainer_module.evaluate, []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", dying)
    return lambda: monkeypatch.setattr(trainer_module, "evaluate", evaluate)


@pytest.mark.parametrize("exact_symmetry", [False, True], ids=["plain", "exact-symmetry"])
def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_run(tiny_data, tmp_path, save_every_epoch, monkeypatch,
                                                                exact_symmetry):
    config = _config(tiny_data, exact_symmetry=exact_symmetry)
    finetune(config, tmp_path / "whole")
    assert not (tmp_path / "whole" / RESUME_FILE).exists()  # removed once the run finished
    whole = _outcome(tmp_path / "whole")

    killed = tmp_path / "killed"
    restore = _kill_at_validation(monkeypatch, 4)  # during epoch 4: epochs 1-3 are saved
    with pytest.raises(KeyboardInterrupt):
        finetune(config, killed)
    restore()
    assert (killed / RESUME_FILE).exists() and not (killed / "metrics.json").exists()

    messages = []
    record = finetune(config, killed, overwrite=True, echo=messages.append)
    assert any(m.startswith(f"resuming {killed} after epoch 3") for m in messages), messages
    assert record["resumed_at_epoch"] == 3 and record["wall_time_before_resume_s"] > 0
    assert _same(_outcome(killed), whole)
    assert not (killed / RESUME_FILE).exists()


@pytest.mark.parametrize("spoil", ["other-settings", "corrupt"])
def test_a_resume_file_of_other_settings_or_unreadable_is_ignored(tiny_data, tmp_path, save_every_epoch,
                                                                  monkeypatch, spoil):
    config = _config(tiny_data)
    finetune(config, tmp_path / "whole")
    whole = _outcome(tmp_path / "whole")

    ft = tmp_path / "run"
    restore = _kill_at_validation(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        finetune(_config(tiny_data, lr=3e-3) if spoil == "other-settings" else config, ft)
    restore()
    if spoil == "corrupt":
        (ft / RESUME_FILE).write_bytes((ft / RESUME_FILE).read_bytes()[:100])

    messages = []
    record = finetune(config, ft, overwrite=True, echo=messages.append)
    expected = "other settings" if spoil == "other-settings" else "not a readable fine-tuning resume file"
    assert any(m.startswith("ignoring") and expected in m for m in messages), messages
    assert "resumed_at_epoch" not in record
    assert _same(_outcome(ft), whole)


def test_execution_keys_do_not_stop_a_resume(tiny_data, tmp_path, save_every_epoch, monkeypatch):
    ft = tmp_path / "run"
    restore = _kill_at_validation(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        finetune(_config(tiny_data, threads=2), ft)
    restore()
    assert finetune(_config(tiny_data), ft, overwrite=True)["resumed_at_epoch"] == 1
