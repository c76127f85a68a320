"""Where a study's data come from: a dataset it generates (and resumes), or an external one that it never writes to."""

import json

from photossl.data.splits import load_splits
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
