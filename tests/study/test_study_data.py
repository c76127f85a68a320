"""Where a study's data come from: a dataset it generates (and resumes), or an external one that it never writes to."""

import json
import threading
import time

from photossl.data.splits import load_splits
from photossl.data.storage import WriterLock, lock_name
from photossl.study import make_study_config, run_study


def _ridge_only(**values) -> dict:
    return {"name": "data", "methods": ["ridge"], "budgets": [8], "seeds": [0], "diagnostics": False,
            "figures": False, "progress": False, **values}


def test_generated_data_are_made_once_and_reused(tmp_path, tiny_settings):
    generate = {"preset": "sibcl-p1", "n_cells": 40, "chunk_size": 20, "targets": ["dos"], **tiny_settings}
    config = make_study_config(_ridge_only(generate=generate, generate_workers=1, n_test=8, n_validation=8))
    out = tmp_path / "study"
    run_study(config, out, echo=lambda m: None)
    assert (out / "data" / "manifest.json").exists()
    splits = load_splits(out / "data", seed=0)  # stored next to the data, where photossl pretrain finds it
    assert splits.sizes == {"pretrain": 24, "labelled": 24, "validation": 8, "test": 8}
    messages = []
    run_study(config, out, echo=messages.append)
    assert any("0 cells generated, 40 reused" in m for m in messages)
    assert json.loads((out / "summary.json").read_text())["cells"]["skipped"] == 1


def test_a_study_waits_for_another_process_writing_its_data(tmp_path, tiny_settings):
    # e.g. two `--only` processes started together on a new study folder
    generate = {"preset": "sibcl-p1", "n_cells": 40, "chunk_size": 20, "targets": ["dos"], **tiny_settings}
    config = make_study_config(_ridge_only(generate=generate, generate_workers=1, n_test=8, n_validation=8))
    out = tmp_path / "study"
    (out / "data").mkdir(parents=True)
    messages, summaries = [], []
    with WriterLock(out / "data" / lock_name(None)):  # held by "another writer", alive
        study = threading.Thread(target=lambda: summaries.append(run_study(config, out, echo=messages.append)))
        study.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("waiting for it to finish" in m for m in messages):
            time.sleep(0.05)
        assert study.is_alive() and not (out / "data" / "manifest.json").exists()
    study.join(120)
    assert summaries and summaries[0]["cells"]["ran"] == 1
    assert sum("waiting for it to finish" in m for m in messages) == 1


def test_external_data_stay_untouched_when_the_study_sets_its_split(study_data, tmp_path):
    before = sorted(p.name for p in study_data.iterdir())
    config = make_study_config(_ridge_only(data=str(study_data), n_test=20, n_validation=10))
    out = tmp_path / "study"
    run_study(config, out, echo=lambda m: None)
    assert sorted(p.name for p in study_data.iterdir()) == before  # no split file written into the dataset
    splits = load_splits(out / "dataset", seed=0)
    assert len(splits.test) == 20 and len(splits.validation) == 10
    record = json.loads((out / "cells" / "ridge__b8__s0.json").read_text())
    assert record["metrics"]["n_test"] == 20 and record["metrics"]["data"] == str(out / "dataset")


def test_a_study_labels_only_the_cells_it_reads_and_gets_the_same_results(tmp_path, tiny_settings):
    import numpy as np

    from photossl.data import budget_indices, open_dataset
    from photossl.study import plan_study
    from photossl.study.plan import needed_label_cells

    generate = {"preset": "sibcl-p1", "n_cells": 60, "chunk_size": 10, "targets": ["dos"], **tiny_settings}
    values = {"name": "labels", "methods": ["supervised", "simclr"], "budgets": [4, 8], "seeds": [0, 1],
              "generate": generate, "generate_workers": 1, "n_test": 8, "n_validation": 8,
              "pretrain": {"epochs": 1, "batch_size": 16, "probe_every": 1, "probe_train": 6},
              "finetune": {"epochs": 2, "head_dims": [16], "patience": 0}, "diagnostics": False, "figures": False,
              "progress": False, "threads": 1}
    needed = make_study_config({**values, "label_cells": "needed"})
    messages = []
    run_study(needed, tmp_path / "needed", echo=messages.append)
    run_study(make_study_config(values), tmp_path / "all", echo=lambda m: None)

    splits = load_splits(tmp_path / "needed" / "data", seed=0)
    expected = np.unique(np.concatenate([splits.test, splits.validation, budget_indices(splits, 8, 0),
                                         budget_indices(splits, 8, 1), budget_indices(splits, 6, 0)]))
    wanted = needed_label_cells(plan_study(needed, tmp_path / "needed"), 60)
    np.testing.assert_array_equal(wanted, expected)
    full = open_dataset(tmp_path / "all" / "data")["dos"].values
    part = open_dataset(tmp_path / "needed" / "data")["dos"].values
    labelled = np.isfinite(part).all(axis=1)
    assert labelled[wanted].all() and 0 < (~labelled).sum() == 60 - labelled.sum()
    assert any(f"{(~labelled).sum()} without labels" in m for m in messages)
    np.testing.assert_array_equal(part[labelled], full[labelled])
    for name in ("supervised__b8__s1.json", "simclr__b4__s0.json", "simclr__b8__s1.json"):
        metrics = [json.loads((tmp_path / run / "cells" / name).read_text())["metrics"] for run in ("needed", "all")]
        assert metrics[0]["dos_rel_l1"] == metrics[1]["dos_rel_l1"], name
    probes = [json.loads(next((tmp_path / run / "pretrain").glob("simclr-*/run.json")).read_text())
              ["final_probe_rel_l1"] for run in ("needed", "all")]
    assert probes[0] == probes[1] and probes[0] is not None


def test_the_needed_cells_cover_tuning_label_sets_and_probes_beyond_the_grid(tmp_path, tiny_settings):
    import numpy as np

    from photossl.data import budget_indices, make_splits
    from photossl.study import plan_study
    from photossl.study.plan import needed_label_cells

    generate = {"preset": "sibcl-p1", "n_cells": 200, "targets": ["dos"], **tiny_settings}
    values = {"methods": ["supervised", "simclr"], "budgets": [4, 8], "seeds": [0], "generate": generate,
              "n_test": 20, "n_validation": 10, "pretrain": {"probe_train": 30},
              "tuning": {"budget": 16, "seeds": [5], "trials": 1, "space": {}}}
    plan = plan_study(make_study_config(values), tmp_path / "s")
    splits = make_splits(200, 0, n_test=20, n_validation=10)
    got = needed_label_cells(plan, 200)
    for part in (splits.test, splits.validation, budget_indices(splits, 8, 0), budget_indices(splits, 16, 5),
                 budget_indices(splits, 30, 0)):
        assert np.isin(part, got).all()
    assert len(got) < 200 and not np.isin(budget_indices(splits, 8, 1), got).all()
    assert not (tmp_path / "s").exists()  # planning writes nothing
