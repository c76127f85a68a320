"""``photossl pretrain`` end to end on a tiny dataset: each method, outputs, resume, errors, the vision track."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.training import load_checkpoint, load_pretrained, make_config, pretrain

REPO = Path(__file__).resolve().parents[2]
FAST = ["--threads", "1", "--no-progress"]


def _invoke(*args):
    result = CliRunner().invoke(cli, ["pretrain", *map(str, args)])
    return result


def _ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method, extra_columns", [
    ("simclr", []),
    ("essl", ["predict_ce", "predict_acc"]),
    ("care", ["care"]),
    ("essl-rel", ["predict_ce", "predict_acc"]),
    ("gcare", ["gcare"]),
    ("byol", ["momentum"]),
    ("essl-byol", ["predict_ce", "predict_acc", "momentum"]),
    ("moco", ["momentum"]),
    ("care-moco", ["care", "momentum"]),
])
def test_one_epoch_of_each_contract_method(tiny_dataset, tmp_path, method, extra_columns):
    run = tmp_path / "run"
    _ok(_invoke("--data", tiny_dataset, "--method", method, "--epochs", 1, "--batch-size", 32, "--out", run, *FAST))
    checkpoint = load_checkpoint(run)
    assert checkpoint["epoch"] == 1 and checkpoint["config"]["method"] == method
    encoder, config = load_pretrained(run)
    assert not encoder.training and config.method == method and config.encoder == "small"
    with torch.no_grad():
        assert encoder(torch.rand(3, 1, 16, 16)).shape == (3, encoder.feature_dim)
    rows = _rows(run)
    assert len(rows) == 1 and rows[0]["epoch"] == 1
    for key in ["loss", "base", "lr", "samples_per_s", "probe_rel_l1", *extra_columns]:
        assert rows[0][key] is not None and rows[0][key] == rows[0][key], key
    assert 0 < rows[0]["probe_rel_l1"] < 10
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert all(column in header for column in extra_columns)
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "complete" and record["seed"] == 0
    assert record["versions"]["torch"] == torch.__version__ and "photossl" in record["versions"]
    assert yaml.safe_load((run / "config.yaml").read_text())["method"] == method


def test_resume_continues_and_refuses_to_overwrite(tiny_dataset, tmp_path, one_line_error):
    run = tmp_path / "run"
    command = ["--data", tiny_dataset, "--method", "simclr", "--batch-size", 32, "--out", run, "--probe-every", 0,
               *FAST, "--epochs", 1]
    _ok(_invoke(*command))
    first = load_checkpoint(run)["model"]
    again = _invoke(*command)  # an existing run is never silently overwritten
    one_line_error(again, "--resume")
    _ok(_invoke(*command, "--resume"))  # already complete: nothing to do, weights untouched
    assert all(torch.equal(first[k], v) for k, v in load_checkpoint(run)["model"].items())
    _ok(_invoke(*command[:-2], "--resume", "--epochs", 2))  # run-control options may change
    assert load_checkpoint(run)["epoch"] == 2 and [r["epoch"] for r in _rows(run)] == [1, 2]
    changed = _invoke(*command, "--resume", "--lr", 0.5)
    assert changed.exit_code != 0 and "cannot resume with lr" in changed.output


def test_interrupted_then_resumed_equals_uninterrupted(tiny_dataset, tiny_surrogate, tmp_path):
    config = make_config({
        "data": str(tiny_dataset), "surrogate": str(tiny_surrogate), "surrogate_fraction": 0.25,
        "method": "essl-care", "care_chunk": 4, "epochs": 2, "batch_size": 16, "limit_samples": 32,
        "probe_every": 0, "progress": False, "threads": 1, "optimizer": "adam",
    })
    pretrain(config, tmp_path / "straight")
    pretrain(config, tmp_path / "split", stop_after_epochs=1)
    assert load_checkpoint(tmp_path / "split")["epoch"] == 1
    pretrain(config, tmp_path / "split", resume=True)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
    assert _rows(tmp_path / "straight") == [
        {**row, "samples_per_s": r0["samples_per_s"], "augment_share": r0["augment_share"],
         "epoch_time_s": r0["epoch_time_s"]}
        for row, r0 in zip(_rows(tmp_path / "split"), _rows(tmp_path / "straight"))
    ]
    assert b["resumed_at"] == [1]
    # a different seed gives different weights (the comparison above can fail)
    pretrain(make_config({**{k: v for k, v in a["config"].items()}, "seed": 1, "epochs": 1}), tmp_path / "other")
    other = load_checkpoint(tmp_path / "other")["model"]
    assert not all(torch.equal(other[k], a["model"][k]) for k in other if other[k].is_floating_point())


@pytest.mark.slow
def test_killed_process_resumes_to_the_same_weights(tiny_dataset, tmp_path):
    args = ["pretrain", "--data", str(tiny_dataset), "--method", "essl", "--epochs", "4", "--batch-size", "16",
            "--out", str(tmp_path / "killed"), "--probe-every", "0", *FAST]
    script = "import sys; from photossl.cli.main import cli; sys.exit(cli())"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", script, *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    epoch_at_kill = load_checkpoint(checkpoint)["epoch"]
    assert epoch_at_kill < 4, "the run finished before it could be killed"
    _ok(CliRunner().invoke(cli, [*args, "--resume"]))
    _ok(CliRunner().invoke(cli, [*[a if a != str(tmp_path / "killed") else str(tmp_path / "whole") for a in args]]))
    a, b = load_checkpoint(tmp_path / "killed")["model"], load_checkpoint(tmp_path / "whole")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_vision_digits_pipeline_one_epoch(tmp_path):
    pytest.importorskip("kornia")
    run = tmp_path / "digits"
    _ok(_invoke("--config", REPO / "pipelines" / "vision-digits.yaml", "--epochs", 1, "--out", run,
                "--limit-samples", 64, "--batch-size", 32, "--method", "essl", *FAST))
    rows = _rows(run)
    assert len(rows) == 1 and 0 <= rows[0]["knn_top1"] <= 1 and 0 <= rows[0]["predict_acc"] <= 1
    probe = json.loads((run / "linear_probe.json").read_text())
    assert probe["seeds"] == [0, 1, 2] and len(probe["accuracies"]) == 3 and probe["mean"] > 0.2  # chance: 0.1
    encoder, config = load_pretrained(run / "checkpoint.pt")
    assert config.track == "vision" and config.encoder == "digits" and config.lr == 0.06  # E-SimCLR's base lr
    assert json.loads((run / "run.json").read_text())["effective_lr"] == pytest.approx(0.06 * 32 / 256)
    assert encoder(torch.rand(2, 1, 16, 16)).shape == (2, 128)


@pytest.mark.parametrize("method, column", [("essl-rel", "predict_acc"), ("gcare", "gcare"),
                                            ("essl-moco", "momentum")])
def test_vision_relative_and_known_group_methods_one_epoch(tmp_path, method, column):
    pytest.importorskip("kornia")
    run = tmp_path / method
    _ok(_invoke("--config", REPO / "pipelines" / "vision-digits.yaml", "--epochs", 1, "--out", run,
                "--limit-samples", 64, "--batch-size", 32, "--method", method, *FAST))
    rows = _rows(run)
    assert len(rows) == 1 and rows[0][column] == rows[0][column] and rows[0][column] >= 0


def test_tensorboard_without_the_package_is_a_clear_error(tiny_dataset, tmp_path, one_line_error):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorboard is installed")
    result = _invoke("--data", tiny_dataset, "--epochs", 1, "--batch-size", 32, "--out", tmp_path / "tb",
                     "--tensorboard", *FAST)
    one_line_error(result, "pip install tensorboard")
