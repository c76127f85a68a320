"""Bad study configs fail at once with one line naming the problem, exit status != 0 and no traceback."""

import pytest
import yaml
from click.testing import CliRunner

from photossl.cli.main import cli


def _study(tmp_path, values, *extra):
    path = tmp_path / "study.yaml"
    path.write_text(values if isinstance(values, str) else yaml.safe_dump(values))
    return CliRunner().invoke(cli, ["study", str(path), "--out", str(tmp_path / "out"), *extra])


@pytest.mark.parametrize("change, fragment", [
    ({"budget": [8]}, "unknown config key 'budget'"),
    ({"methods": ["supervised", "simclr2"]}, "unknown method 'simclr2'"),
    ({"methods": []}, "'methods' must name at least one method"),
    ({"methods": ["ridge", "ridge"]}, "repeats a label"),
    ({"budgets": [0, 8]}, "'budgets' must be distinct positive integers"),
    ({"seeds": [1, 1]}, "'seeds' must be distinct"),
    ({"finetune": {"budget": 5}}, "finetune key 'budget' is set by the study"),
    ({"finetune": {"lr": -1.0}}, "method 'supervised': config key 'lr' must be > 0"),
    ({"finetune": {"learning_rate": 0.1}}, "unknown config key 'learning_rate'"),
    ({"pretrain": {"temperature": 0}}, "method 'simclr': config key 'temperature' must be > 0"),
    ({"pretrain": {"data": "x"}}, "pretrain key 'data' is set by the study"),
    ({"method_options": {"care": {"pretrain": {}}}}, "names 'care', which is not in 'methods'"),
    ({"method_options": {"simclr": {"pretrian": {}}}}, "unknown config key 'method_options.simclr.pretrian'"),
    ({"generate": {"n_cells": 10}}, "'data' and 'generate' exclude each other"),
    ({"diagnostics_groups": ["rot5"]}, "unknown group 'rot5'"),
    ({"budgets": [8, 1000]}, "budget 1000 exceeds the labelled pool of 64 cells"),
    ({"method_options": {"simclr": {"budgets": [8, 8]}}}, "'method_options.simclr.budgets' must be distinct positive"),
    ({"method_options": {"ridge": {"budgets": [8, 500]}}}, "budget 500 exceeds the labelled pool of 64 cells"),
    ({"data": "/nowhere/at/all"}, "dataset folder not found"),
    ({"device": "tpu"}, "config key 'device' must be one of"),
])
def test_bad_config_is_a_one_line_error(tiny_study, tmp_path, change, fragment, one_line_error):
    one_line_error(_study(tmp_path, tiny_study(**change)), fragment)
    assert not (tmp_path / "out" / "cells").exists()  # nothing ran


@pytest.mark.parametrize("text, fragment", [
    ("methods: [supervised\n", "is not valid YAML"),
    ("- a list\n", "must hold a mapping"),
])
def test_unreadable_config_file(tmp_path, text, fragment, one_line_error):
    one_line_error(_study(tmp_path, text), fragment)


def test_missing_config_file(tmp_path, one_line_error):
    one_line_error(CliRunner().invoke(cli, ["study", str(tmp_path / "absent.yaml")]), "absent.yaml")


def test_dry_run_lists_the_grid(tiny_study, tmp_path):
    values = tiny_study(methods=["supervised", "essl", "essl-probe", "supervised-long"],
                        method_options={"essl-probe": {"method": "essl", "finetune": {"mode": "frozen"}},
                                        "supervised-long": {"method": "supervised", "budgets": [16, 32],
                                                            "finetune": {"epochs": 3}}})
    result = _study(tmp_path, values, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "16 cells (4 methods, budgets 8, 16, 32, 2 seeds)" in result.output  # 3 x 2 x 2 + 2 x 2
    # the two essl labels share one pretraining run: their pretraining settings are the same
    assert result.output.count("pretrain essl-") == 1 and "for essl, essl-probe" in result.output
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_each_methods_tuning_candidates(tiny_study, tmp_path):
    values = tiny_study(methods=["supervised", "simclr"],
                        tuning={"budget": 8, "trials": 3, "space": {"pretrain.lr": [1e-4, 3e-3], "finetune.lr": [0.1]}})
    result = _study(tmp_path, values, "--dry-run")
    assert result.exit_code == 0, result.output
    # the network from scratch has one other value of its one knob; SimCLR gets three candidates
    assert "tune supervised first: 2 candidates at 8 labels (seeds 0)" in result.output
    assert "supervised~t0: as written" in result.output and "supervised~t1: finetune.lr=0.1" in result.output
    assert "tune simclr first: 3 candidates" in result.output and "simclr~t2: " in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["../shared-runs", "ABSOLUTE"])
def test_pretrain_dir_holds_the_runs_and_the_cells_start_from_there(tiny_study, tmp_path, where):
    from photossl.study import make_study_config, plan_study

    folder = str(tmp_path / "elsewhere") if where == "ABSOLUTE" else where
    out = tmp_path / "out"
    plan = plan_study(make_study_config(tiny_study(pretrain_dir=folder)), out)
    default = plan_study(make_study_config(tiny_study()), out)
    expected = tmp_path / "elsewhere" if where == "ABSOLUTE" else out / where
    assert plan.pretrain_dir == expected and default.pretrain_dir == out / "pretrain"
    # an execution key: the same run names, only the place differs
    assert list(plan.jobs) == list(default.jobs) and len(plan.jobs) == 1
    job = next(iter(plan.jobs))
    simclr_cells = [config for cell, config in plan.cell_configs.items() if cell.label == "simclr"]
    assert simclr_cells and all(config.pretrained == str(expected / job) for config in simclr_cells)


@pytest.mark.parametrize("change", [{"budgets": [8, 65]}, {"n_test": 40, "budgets": [8, 33]},
                                    {"data": None, "generate": {"n_cells": 12, "size": 16}}])
def test_dry_run_refuses_a_budget_larger_than_the_pool(tiny_study, tmp_path, change, one_line_error):
    values = {**tiny_study(), **change}
    values = {k: v for k, v in values.items() if v is not None}
    one_line_error(_study(tmp_path, values, "--dry-run"), "exceeds the labelled pool")
    assert not (tmp_path / "out").exists()
