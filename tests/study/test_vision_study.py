"""The vision track's label study through ``photossl study``: scikit-learn's digits at 8 px, tiny budgets, one-epoch
runs; the same records, table and summary as a photonic study, resumed without redoing finished cells."""

import csv
import json

import pytest
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli

pytest.importorskip("kornia")
pytest.importorskip("sklearn")

TINY_VISION = {
    "name": "tiny-vision", "track": "vision", "dataset": "digits", "image_size": 8, "n_validation": 40,
    "methods": ["supervised", "random-init", "simclr"], "budgets": [10, 20], "seeds": [0],
    "pretrain": {"epochs": 1, "batch_size": 32, "limit_samples": 64, "warmup_epochs": 0, "probe_every": 0,
                 "linear_probe_seeds": [0], "linear_probe_epochs": 1},
    "finetune": {"mode": "frozen", "epochs": 1},
    "method_options": {"supervised": {"finetune": {"mode": "full", "epochs": 1, "batch_size": 8}}},
    "diagnostics": False, "figures": False, "threads": 1, "progress": False,
}


def _study(tmp_path, values, *extra):
    path = tmp_path / "vision.yaml"
    path.write_text(yaml.safe_dump(values))
    return CliRunner().invoke(cli, ["study", str(path), "--out", str(tmp_path / "out"), *extra])


def _ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_vision_study_runs_through_the_cli_and_resumes(tmp_path):
    out = tmp_path / "out"
    dry = _ok(_study(tmp_path, TINY_VISION, "--dry-run")).output
    assert "data vision dataset digits at 8 px; 6 cells (3 methods, budgets 10, 20, 1 seeds)" in dry
    assert "pretrain simclr-" in dry and not out.exists()

    _ok(_study(tmp_path, TINY_VISION, "--only", "simclr"))
    assert sorted(p.stem for p in (out / "cells").glob("*.json")) == ["simclr__b10__s0", "simclr__b20__s0"]

    _ok(_study(tmp_path, TINY_VISION))
    log = (out / "study.log").read_text()
    assert "resuming: 2 of 6 cells already done" in log
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["method"], r["kind"], r["budget"]) for r in rows} == {
        (m, k, b) for m, k in (("supervised", "supervised"), ("random-init", "random-init"), ("simclr", "pretrained"))
        for b in ("10", "20")}
    assert all(r["status"] == "ok" and 0 <= float(r["top1_error"]) <= 1 for r in rows)
    assert all(abs(float(r["top1_error"]) + float(r["top1_acc"]) - 1) < 1e-6 for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "top1_error" and summary["data"] == "vision dataset digits at 8 px"
    assert summary["cells"] == {"planned": 6, "ran": 4, "skipped": 2, "failed": 0}
    assert set(summary["label_saving_factors"]) == {"random-init", "simclr"}
    record = json.loads((out / "cells" / "supervised__b20__s0.json").read_text())
    assert record["metrics"]["n_train"] == 20 and record["metrics"]["n_validation"] == 40
    indices = json.loads((out / "finetune" / "supervised" / "b20-s0" / "indices.json").read_text())
    assert not set(indices["train"]) & set(indices["validation"])
    assert (out / "finetune" / "supervised" / "b20-s0" / "model.pt").exists()
    simclr = json.loads((out / "cells" / "simclr__b10__s0.json").read_text())["metrics"]
    assert simclr["mode"] == "frozen" and simclr["pretrained"]["method"] == "simclr"

    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    result = _ok(_study(tmp_path, TINY_VISION))
    assert "0 cells ran (0 failed), 6 skipped" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == mtimes


@pytest.mark.parametrize("change, fragment", [
    ({"dataset": None}, "a vision study needs 'dataset'"),
    ({"dataset": "svhn"}, "unknown vision dataset 'svhn'"),
    ({"data": "bundled"}, "config key 'data' applies to photonic data"),
    ({"methods": ["supervised", "ridge"]}, "method 'ridge': ridge needs photonic cells"),
    ({"budgets": [10, 2000]}, "budget 2000 exceeds the labelled pool of 1397 images"),
    ({"finetune": {"mode": "frozen", "batch": 3}}, "unknown config key 'batch'"),
    ({"method_options": {"random-init": {"finetune": {"mode": "full"}}}}, "random-init reads its untrained encoder"),
    ({"finetune_ensemble": 2}, "on the vision track each cell runs alone"),
    ({"pretrain": {"dataset": "digits"}}, "pretrain key 'dataset' is set by the study"),
])
def test_bad_vision_config_is_a_one_line_error(tmp_path, change, fragment, one_line_error):
    one_line_error(_study(tmp_path, {**TINY_VISION, **change}, "--dry-run"), fragment)


def test_vision_keys_and_random_init_belong_to_the_vision_track(tiny_study, tmp_path, one_line_error):
    one_line_error(_study(tmp_path, tiny_study(dataset="digits"), "--dry-run"), "set 'track: vision'")
    one_line_error(_study(tmp_path, tiny_study(methods=["supervised", "random-init"]), "--dry-run"),
                   "random-init reads out an untrained encoder on the vision track only")
