"""The cheap-label method: rough labels of the pool from photossl's own solver, a network trained on them, fine-tuned
on each budget from there; its rough-label run is shared, resumed, and its label cost reported."""

import json

import pytest

from photossl.data.storage import file_sha256
from photossl.errors import PhotosslError
from photossl.study import make_study_config, run_study
from photossl.study.cheap_label import with_side_by_side_equivalent
from photossl.study.plan import plan_study

ROUGH = {"grid_size": 5}  # rougher than the tiny data's 7 x 7 grid with |G| <= 3: |G| <= 2 on 5 x 5 points


def _config(tiny_study, **overrides):
    return tiny_study(methods=["supervised", "cheap-label"], seeds=[0], generate_workers=1,
                      method_options={"cheap-label": {"rough": ROUGH, "pretrain": {"epochs": 2}}}, **overrides)


def test_cheap_label_study_runs_records_label_cost_and_resumes(tiny_study, tmp_path):
    out = tmp_path / "study"
    messages: list[str] = []
    summary = run_study(make_study_config(_config(tiny_study)), out, echo=messages.append)
    assert summary["cells"] == {"planned": 4, "ran": 4, "skipped": 0, "failed": 0}, summary["failed_cells"]
    (job,) = summary["pretraining"]
    assert job.startswith("cheap-label-") and summary["pretraining"][job]["status"] == "ok"

    cost = summary["label_cost"]["cheap-label"]
    assert cost["n_pool"] == 64 and cost["rough_recipe"]["grid_size"] == 5
    assert cost["rough_per_label_solver_s"] > 0 and cost["exact_per_label_solver_s"] > 0
    assert cost["rough_pool_solver_s"] == pytest.approx(64 * cost["rough_per_label_solver_s"])
    # the pool counted with the cost ratio measured side by side, not with two timings taken apart
    together = cost["cost_ratio_measured_together"]
    assert together["cells"] == 16 and together["rounds"] == 3
    assert together["exact_over_rough"] == sorted(together["exact_over_rough_per_round"])[1] > 0
    assert cost["rough_equivalent_labels"] == pytest.approx(64 / together["exact_over_rough"])
    assert cost["rough_equivalent_labels_from_recorded"] == pytest.approx(cost["rough_pool_solver_s"]
                                                                          / cost["exact_per_label_solver_s"])
    assert cost["exact_cost_source"] == "recorded when the exact data were generated"
    assert 0 < cost["rough_labels_validation_error"] < 1 and 0 < cost["pretrained_validation_error"] < 1

    run = out / "pretrain" / job
    indices = json.loads((run / "indices.json").read_text())
    assert len(indices["train"]) == 64 and not set(indices["train"]) & set(indices["test"] + indices["validation"])
    assert json.loads((run / "metrics.json").read_text())["target_variable"] == "dos_eldiff_tm"
    cell = json.loads((out / "cells" / "cheap-label__b8__s0.json").read_text())
    start = cell["metrics"]["pretrained"]
    assert start["run"] == str(run) and start["head_reused"] and start["held_out_cells_in_pretraining_pool"] == 0

    # a rerun generates no rough label and trains nothing again
    model_sha, mtime = file_sha256(run / "model.pt"), (run / "model.pt").stat().st_mtime_ns
    messages.clear()
    summary = run_study(make_study_config(_config(tiny_study)), out, echo=messages.append)
    assert summary["cells"]["skipped"] == 4 and summary["label_cost"]["cheap-label"] == cost
    assert file_sha256(run / "model.pt") == model_sha and (run / "model.pt").stat().st_mtime_ns == mtime
    assert any("already trained" in m for m in messages)
    assert not any(m.startswith("rough labels:") for m in messages)


def test_a_tuned_study_reuses_the_chosen_candidates_rough_label_run(tiny_study, tmp_path):
    out = tmp_path / "study"
    messages: list[str] = []
    tuning = {"budget": 8, "trials": 2, "space": {"pretrain.lr": [1e-4, 3e-3]}}
    summary = run_study(make_study_config(_config(tiny_study, budgets=[16], tuning=tuning)), out,
                        echo=messages.append)
    assert summary["cells"]["failed"] == 0, summary["failed_cells"]
    runs = sorted(p.name for p in (out / "pretrain").iterdir())
    assert len(runs) == 2 and all(name.startswith("cheap-label-") for name in runs)  # one per candidate, no third
    (job,) = summary["pretraining"]
    assert job in runs
    chose = next(k for k, m in enumerate(messages) if m.startswith("tuning cheap-label: chose"))
    after = messages[chose:]
    assert f"pretrain {job}: already trained" in after
    assert not any(m.startswith("rough labels:") for m in after)  # the study proper labels nothing again
    assert not (out / "rough").exists()


def test_cheap_label_options_are_checked_at_once(tiny_study, tmp_path):
    with pytest.raises(PhotosslError, match="cheap-label methods only"):
        make_study_config(tiny_study(method_options={"supervised": {"rough": ROUGH}}))
    bad_key = _config(tiny_study)
    bad_key["method_options"]["cheap-label"]["rough"] = {"n_cells": 8}
    with pytest.raises(PhotosslError, match="method 'cheap-label'.*not a label setting"):
        plan_study(make_study_config(bad_key), tmp_path / "s")
    bands = _config(tiny_study, finetune={"epochs": 1, "target": "bands"})
    with pytest.raises(PhotosslError, match="method 'cheap-label'.*bands"):
        plan_study(make_study_config(bands), tmp_path / "s")
    study_key = _config(tiny_study)
    study_key["method_options"]["cheap-label"]["pretrain"] = {"budget": 8}
    with pytest.raises(PhotosslError, match="pretrain key 'budget'"):
        make_study_config(study_key)


def test_an_older_label_cost_record_counts_the_pool_with_the_side_by_side_ratio():
    older = {"n_pool": 5500, "rough_pool_solver_s": 97.4, "exact_per_label_solver_s": 0.2756,
             "rough_equivalent_labels": 353.4,
             "cost_ratio_measured_together": {"cells": 16, "exact_over_rough": 12.1}, "n_validation": 500}
    record = with_side_by_side_equivalent(older)
    assert record["rough_equivalent_labels"] == pytest.approx(5500 / 12.1)
    assert record["rough_equivalent_labels_from_recorded"] == 353.4
    assert list(record)[3:5] == ["rough_equivalent_labels", "rough_equivalent_labels_from_recorded"]
    assert older["rough_equivalent_labels"] == 353.4  # the record read is not changed in place
    assert with_side_by_side_equivalent(record) == record
