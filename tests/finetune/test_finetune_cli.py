"""``photossl finetune`` end to end: the contract with and without --pretrained, the baselines, one-line errors."""

import json
import math

import pytest
import torch
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli

FAST = ["--epochs", "2", "--threads", "1", "--no-progress", "--head-dims", "32"]


def _invoke(*args):
    return CliRunner().invoke(cli, ["finetune", *map(str, args)])


def _ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _metrics(ft):
    return json.loads((ft / "metrics.json").read_text())


def test_supervised_contract(tiny_data, tmp_path):
    ft = tmp_path / "ft"
    result = _ok(_invoke("--data", tiny_data, "--budget", 20, "--seed", 0, "--out", ft, *FAST))
    record = _metrics(ft)
    assert "dos_rel_l1" in result.output
    assert record["method"] == "supervised" and record["budget"] == 20 and record["seed"] == 0
    assert 0 < record["dos_rel_l1"] < 10 and record["dos_rel_l1"] == record["test"]["dos_rel_l1"]
    assert record["selected_epoch"] in (1, 2) and record["epochs_run"] == 2
    assert record["wall_time_s"] > 0 and record["seeds"] == {"budget": 0, "init": 0, "split": 0}
    assert record["versions"]["torch"] == torch.__version__ and "photossl" in record["versions"]
    assert record["validation"]["dos_rel_l1"] > 0 and record["n_train"] == 20
    assert (ft / "model.pt").exists() and (ft / "history.csv").exists()
    assert yaml.safe_load((ft / "config.yaml").read_text())["budget"] == 20
    indices = json.loads((ft / "indices.json").read_text())
    assert len(indices["train"]) == 20 and len(indices["test"]) == record["n_test"] > 0


def test_pretrained_contract(tiny_data, tiny_run, tmp_path):
    ft = tmp_path / "ft"
    _ok(_invoke("--data", tiny_data, "--pretrained", tiny_run, "--budget", 20, "--seed", 0, "--out", ft, *FAST))
    record = _metrics(ft)
    assert record["method"] == "simclr" and math.isfinite(record["dos_rel_l1"])
    assert record["pretrained"]["run"] == str(tiny_run) and record["pretrained"]["method"] == "simclr"
    # photossl pretrain and finetune read the same (default) split: no held-out cell was pretrained on
    assert record["pretrained"]["held_out_cells_in_pretraining_pool"] == 0
    # starting from the pretrained weights: a frozen linear probe leaves the encoder exactly as pretrained
    probe = tmp_path / "probe"
    _ok(_invoke("--data", tiny_data, "--pretrained", tiny_run, "--budget", 20, "--mode", "frozen", "--head",
                "linear", "--out", probe, *FAST))
    from photossl.finetune import load_finetuned
    from photossl.training import load_pretrained

    pretrained, _ = load_pretrained(tiny_run)
    tuned = load_finetuned(probe).encoder
    for (name, a), b in zip(pretrained.state_dict().items(), tuned.state_dict().values()):
        assert torch.equal(a, b), name
    assert _metrics(probe)["mode"] == "frozen"


@pytest.mark.parametrize("target, metric", [("gaps", "gaps_mae"), ("bands", "bands_rel_l1"), ("dos", "dos_rel_l1")])
def test_other_targets(tiny_data, tmp_path, target, metric):
    ft = tmp_path / target
    _ok(_invoke("--data", tiny_data, "--target", target, "--budget", 16, "--out", ft, *FAST))
    record = _metrics(ft)
    assert record["metric"] == metric and 0 < record[metric] < 10
    assert record["target_variable"] == ("dos_tm" if target == "dos" else f"{target}_tm")


@pytest.mark.parametrize("baseline", ["ridge", "kernel-ridge"])
def test_classical_baselines(tiny_data, tmp_path, baseline):
    ft = tmp_path / baseline
    _ok(_invoke("--data", tiny_data, "--baseline", baseline, "--budget", 30, "--out", ft, "--no-progress"))
    record = _metrics(ft)
    assert record["method"] == baseline and record["kind"] == "classical" and 0 < record["dos_rel_l1"] < 10
    assert record["hyperparameters"]["alpha"] > 0 and (ft / "model.npz").exists()


def test_budget_larger_than_the_labelled_pool(tiny_data, tmp_path, one_line_error):
    result = _invoke("--data", tiny_data, "--budget", 10_000, "--out", tmp_path / "ft", *FAST)
    one_line_error(result, "budget 10000 exceeds the labelled pool of 76 cells")


def test_refuses_to_overwrite_a_finished_run(tiny_data, tmp_path, one_line_error):
    ft = tmp_path / "ft"
    _ok(_invoke("--data", tiny_data, "--baseline", "ridge", "--budget", 10, "--out", ft, "--no-progress"))
    one_line_error(_invoke("--data", tiny_data, "--baseline", "ridge", "--budget", 10, "--out", ft), "--overwrite")
    _ok(_invoke("--data", tiny_data, "--baseline", "ridge", "--budget", 12, "--out", ft, "--overwrite"))
    assert _metrics(ft)["budget"] == 12


@pytest.mark.parametrize("config, fragment", [
    ({"budget": 10, "learning_rate": 0.1}, "unknown config key 'learning_rate'"),
    ({"budget": 10, "target": "colour"}, "config key 'target' must be one of"),
    ({"budget": 10, "augment": ["shear"]}, "unknown transformation 'shear'"),
    ({"budget": 10, "lr": -1.0}, "'lr' must be > 0"),
    ({"budget": 10, "mode": "frozen"}, "needs a pretrained encoder"),
    ({"budget": 10, "epochs": "many"}, "'epochs' must be an integer"),
])
def test_bad_configs_are_one_line_errors(tiny_data, tmp_path, config, fragment, one_line_error):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    one_line_error(_invoke("--config", path, "--data", tiny_data, "--out", tmp_path / "ft"), fragment)
    assert not (tmp_path / "ft" / "metrics.json").exists()


def test_missing_inputs_are_one_line_errors(tiny_data, tmp_path, one_line_error):
    one_line_error(_invoke("--out", tmp_path / "a"), "needs a dataset")
    one_line_error(_invoke("--data", tmp_path / "nowhere", "--out", tmp_path / "b"), "not found")
    one_line_error(_invoke("--data", tiny_data, "--pretrained", tmp_path / "norun", "--out", tmp_path / "c"),
                    "no checkpoint")
    one_line_error(_invoke("--data", tiny_data, "--polarization", "te", "--out", tmp_path / "d"), "no TE")


def test_a_junk_file_as_pretrained_is_one_line(tiny_data, tmp_path, one_line_error):
    junk = tmp_path / "weights.bin"
    junk.write_bytes(b"just some bytes, not a checkpoint\n" * 20)
    line = one_line_error(_invoke("--data", tiny_data, "--pretrained", junk, "--out", tmp_path / "ft", *FAST),
                          f"{junk} is not a readable photossl pretraining checkpoint", "photossl pretrain")
    assert "weights_only" not in line and len(line) < 250 + len(str(junk))
    assert not (tmp_path / "ft").exists()
