"""What a finished study leaves behind (table, summary, diagnostics, figures), and ``photossl plot`` /
``photossl predict`` on it."""

import csv
import json
import math

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.study import make_study_config, run_study


@pytest.fixture(scope="module")
def finished(study_data, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("study") / "tiny"
    values = {
        "name": "tiny", "data": str(study_data), "methods": ["supervised", "essl", "ridge"],
        "pretrain": {"epochs": 1, "batch_size": 32, "probe_every": 0},
        "finetune": {"epochs": 2, "head_dims": [16]}, "budgets": [8, 16], "seeds": [0, 1],
        "diagnostics_cells": 40, "threads": 1, "progress": False,
    }
    summary = run_study(make_study_config(values), out, echo=lambda m: None)
    torch.set_num_threads(threads)
    return out, summary


def _ok(result):
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_results_table_and_summary(finished):
    out, summary = finished
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    for column in ("method", "kind", "budget", "seed", "status", "dos_rel_l1", "validation_dos_rel_l1",
                   "selected_epoch", "epochs_run", "wall_time_s"):
        assert column in rows[0], column
    with xr.open_dataset(out / "results.nc", engine="h5netcdf") as table:
        assert table.sizes["row"] == 12 and table.attrs["metric"] == "dos_rel_l1"
        assert np.isfinite(table["dos_rel_l1"].values).all()
        assert sorted(set(table["method"].values)) == ["essl", "ridge", "supervised"]
    assert summary["metric"] == "dos_rel_l1" and summary["cells"]["failed"] == 0
    mean = summary["mean_over_seeds"]["essl"]["16"]
    values = [float(r["dos_rel_l1"]) for r in rows if r["method"] == "essl" and r["budget"] == "16"]
    assert mean["n"] == 2 and mean["mean"] == pytest.approx(np.mean(values))
    assert set(summary["label_saving_factors"]) == {"essl", "ridge"}
    for method, entry in summary["label_saving"]["methods"].items():
        assert set(entry) == {"factor", "budget", "extrapolated", "reached", "reason"}
        assert (entry["factor"] is None) == (not entry["reached"] or entry["reason"] is not None)
        assert summary["label_saving_factors"][method] == entry["factor"]
    assert summary["label_saving"]["reference"] == "supervised" and summary["label_saving"]["at_error"] > 0
    spread = summary["error_cut_seed_spread"]["essl"]["16"]
    assert spread["n"] == 2 and spread["min"] <= spread["max"]
    cuts = (out / "error_cuts.md").read_text()
    assert "| method \\ labels | 8 | 16 |" in cuts and "| essl |" in cuts and "| ridge |" in cuts
    log = (out / "study.log").read_text()
    assert "label saving vs supervised at dos_rel_l1 = " in log and "| essl |" in log
    supervised = summary["mean_over_seeds"]["supervised"]["16"]["mean"]
    assert summary["error_cut_vs_reference"]["essl"]["16"] == pytest.approx(1 - mean["mean"] / supervised)
    assert json.loads((out / "summary.json").read_text())["cells"]["planned"] == 12


def test_diagnostics_and_figures(finished):
    out, summary = finished
    for name in ("essl", "supervised-b16", "random-init"):
        record = json.loads((out / "diagnostics" / f"{name}.json").read_text())
        assert record["n_samples"] == 40 and {r["group"] for r in record["transformations"]} == {
            "rot4", "flip", "half_translate"}
        assert (out / "diagnostics" / f"{name}.nc").exists()
    essl = summary["diagnostics"]["essl"]
    assert 0 <= essl["prediction_accuracy"] <= 1  # E-SSL's rotation head was measured
    # periodic convolutions with total stride 8 make a random encoder exactly invariant to half-cell translations
    assert summary["diagnostics"]["random-init"]["half_translate"]["invariance_error"] < 1e-5
    for stem in ("error_vs_labels", "symmetry_errors", "orbits_essl", "dos_predictions_supervised"):
        for suffix in (".png", ".pdf"):
            assert (out / "figures" / f"{stem}{suffix}").stat().st_size > 1000, stem


def test_plot_commands(finished, study_data, tmp_path, one_line_error):
    out, _ = finished
    result = _ok(CliRunner().invoke(cli, ["plot", "error-vs-labels", str(out), "--out", str(tmp_path / "evl")]))
    assert "label saving vs supervised at dos_rel_l1 = " in result.output and " essl " in result.output
    assert (tmp_path / "evl.png").exists() and (tmp_path / "evl.pdf").exists()
    _ok(CliRunner().invoke(cli, ["plot", "error-vs-labels", str(out / "results.nc"), "--out", str(tmp_path / "n")]))
    _ok(CliRunner().invoke(cli, ["plot", "symmetry", str(out), "--out", str(tmp_path / "sym")]))
    (run,) = (out / "pretrain").glob("essl-*")
    random_init = str(out / "diagnostics" / "random-init.nc")
    result = _ok(CliRunner().invoke(cli, ["plot", "symmetry", f"mine={run}", random_init, "--data", str(study_data),
                                          "--n-cells", "24", "--split", "pretrain", "--out", str(tmp_path / "sym2")]))
    assert "mine: transformation-prediction accuracy" in result.output and "on 24 pretrain cells" in result.output
    _ok(CliRunner().invoke(cli, ["plot", "orbits", "--model", str(run), "--data", str(study_data),
                                 "--out", str(tmp_path / "orb"), "--n-cells", "3"]))
    ft = out / "finetune" / "supervised" / "b16-s0"
    result = _ok(CliRunner().invoke(cli, ["plot", "dos", "--model", str(ft), "--data", str(study_data),
                                          "--out", str(tmp_path / "dos"), "--n", "2"]))
    for stem in ("sym", "sym2", "orb", "dos", "n"):
        assert (tmp_path / f"{stem}.png").exists() and (tmp_path / f"{stem}.pdf").exists(), stem
    bad = CliRunner().invoke(cli, ["plot", "dos", "--model", str(out / "finetune" / "ridge" / "b8-s0" / "nothing"),
                                   "--data", str(study_data), "--out", str(tmp_path / "x")])
    one_line_error(bad, "does not exist", "--help")


def test_predict_with_a_study_model(finished, study_data, tmp_path):
    out, _ = finished
    ft = out / "finetune" / "essl" / "b16-s0"
    _ok(CliRunner().invoke(cli, ["predict", "--model", str(ft), "--data", str(study_data),
                                 "--out", str(tmp_path / "p.nc")]))
    with xr.open_dataset(tmp_path / "p.nc", engine="h5netcdf") as pred:
        assert pred["dos"].dims == ("cell", "freq") and pred.sizes["cell"] == 80 and pred.attrs["method"] == "essl"
        assert np.allclose(pred["dos"] - pred["dos_eldiff"], 2 * math.pi * pred["freq"], atol=1e-5)
