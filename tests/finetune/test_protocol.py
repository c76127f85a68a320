"""The fine-tuning protocol, checked through ``photossl.finetune.finetune``: nested label budgets disjoint from
validation and test, independent seeds, selection on validation only, and one read of the test split."""

import csv
import json

import numpy as np
import pytest
import torch

from photossl.errors import PhotosslError
from photossl.finetune import FinetuneData, finetune, load_finetuned, make_finetune_config, score


def _run(tiny_data, out, **values):
    config = make_finetune_config({"data": str(tiny_data), "progress": False, "head_dims": [32], **values})
    record = finetune(config, out)
    return record, json.loads((out / "indices.json").read_text())


@pytest.mark.parametrize("baseline", ["ridge", "none"])
def test_budget_subsets_are_nested_and_disjoint_from_validation_and_test(tiny_data, tmp_path, baseline):
    runs = {}
    for budget, seed in [(10, 0), (20, 0), (40, 0), (10, 1), (20, 1)]:
        _, runs[budget, seed] = _run(tiny_data, tmp_path / f"b{budget}-s{seed}", budget=budget, seed=seed,
                                     baseline=baseline, epochs=1)
    for seed in (0, 1):
        small, large = set(runs[10, seed]["train"]), set(runs[20, seed]["train"])
        assert len(small) == 10 and len(large) == 20 and small < large
    assert set(runs[20, 0]["train"]) < set(runs[40, 0]["train"])
    assert runs[10, 0]["train"] != runs[10, 1]["train"]  # independent label subsets per seed
    validation, test = set(runs[10, 0]["validation"]), set(runs[10, 0]["test"])
    assert validation and test and not validation & test
    for indices in runs.values():
        train = set(indices["train"])
        assert not train & validation and not train & test
        assert set(indices["validation"]) == validation and set(indices["test"]) == test  # one split for all


def test_selects_the_best_validation_epoch_and_reads_the_test_split_once(tiny_data, tmp_path, monkeypatch):
    reads = []
    original = FinetuneData.test

    def counting_test(self):
        reads.append(1)
        return original(self)

    monkeypatch.setattr(FinetuneData, "test", counting_test)
    out = tmp_path / "ft"
    record, indices = _run(tiny_data, out, budget=30, epochs=8, patience=0, lr=3e-3, schedule="constant")
    assert len(reads) == 1
    with (out / "history.csv").open() as handle:
        history = [float(row["val_dos_rel_l1"]) for row in csv.DictReader(handle)]
    assert len(history) == 8
    assert record["selected_epoch"] == 1 + int(np.argmin(history))
    assert record["validation"]["dos_rel_l1"] == pytest.approx(min(history))
    # the saved model is the selected one: it reproduces the recorded test error
    from photossl.data.loaders import load_arrays

    model = load_finetuned(out)
    eps, truth = load_arrays(tiny_data, "dos_eldiff_tm", np.array(indices["test"]), normalise=False)
    assert score(model.target, model.predict(eps), truth.numpy())["dos_rel_l1"] == pytest.approx(
        record["dos_rel_l1"], rel=1e-5)


def test_early_stopping_waits_patience_epochs(tiny_data, tmp_path):
    record, _ = _run(tiny_data, tmp_path / "ft", budget=20, epochs=60, patience=2, lr=0.05, schedule="constant")
    assert record["epochs_run"] <= record["selected_epoch"] + 2
    assert record["stopped_early"] == (record["epochs_run"] < 60)


def test_max_steps_caps_the_epochs_of_large_budgets(tiny_data, tmp_path):
    # 40 labels at batch 8: 5 steps per epoch, so 12 steps take ceil(12 / 5) = 3 epochs, and the cosine ends there
    record, _ = _run(tiny_data, tmp_path / "ft", budget=40, batch_size=8, epochs=30, max_steps=12, patience=0)
    assert record["epochs_planned"] == 3 and record["epochs_run"] == 3 and not record["stopped_early"]
    with (tmp_path / "ft" / "history.csv").open() as handle:
        rates = [float(row["lr"]) for row in csv.DictReader(handle)]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-3 * (1 + np.cos(2 * np.pi / 3)) / 2)
    small = make_finetune_config({"data": str(tiny_data), "budget": 10, "batch_size": 8, "epochs": 30,
                                  "max_steps": 12})
    assert small.epochs_for(10) == 6 and make_finetune_config({"epochs": 30}).epochs_for(10_000) == 30


def test_a_step_schedule_grows_the_cap_with_the_budget():
    # batch 16, 50 epochs, 2000 steps below 1600 labels and 6000 from there on (pipelines/dos-medium.yaml):
    # 640 labels: 40 steps per epoch, ceil(2000 / 40) = 50 epochs; 800: 50 per epoch, 40 epochs;
    # 1600: 100 per epoch, ceil(6000 / 100) = 60, so all 50; 3200: 200 per epoch, 30 epochs.
    config = make_finetune_config({"epochs": 50, "batch_size": 16, "max_steps": {0: 2000, 1600: 6000}})
    assert [config.epochs_for(n) for n in (50, 640, 800, 1599, 1600, 3200)] == [50, 50, 40, 20, 50, 30]
    assert [config.step_cap(n) for n in (50, 1599, 1600, 3200)] == [2000, 2000, 6000, 6000]
    # keys as text (a round trip through JSON) are read as labels; below the first key its steps apply
    late = make_finetune_config({"epochs": 50, "batch_size": 16, "max_steps": {"3200": 6000, "1000": 500}})
    assert late.max_steps == {1000: 500, 3200: 6000}
    assert late.epochs_for(100) == 50 and late.epochs_for(1000) == 8 and late.epochs_for(3200) == 30
    for bad in ({}, {"a": 100}, {-1: 100}, {0: 0}, {0: 1.5}):
        with pytest.raises(PhotosslError, match="max_steps"):
            make_finetune_config({"max_steps": bad})


def test_test_split_cannot_be_read_twice(tiny_data):
    data = FinetuneData(make_finetune_config({"data": str(tiny_data), "budget": 5}))
    try:
        data.test()
        with pytest.raises(ValueError, match="already read"):
            data.test()
    finally:
        data.close()


def test_same_seed_same_result_and_callers_rng_untouched(tiny_data, tmp_path):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first, _ = _run(tiny_data, tmp_path / "a", budget=12, epochs=2)
    assert torch.equal(torch.get_rng_state(), state)
    second, _ = _run(tiny_data, tmp_path / "b", budget=12, epochs=2)
    assert first["test"] == second["test"] and first["validation"] == second["validation"]


def test_a_whole_network_for_the_same_target_can_be_kept_unchanged(tiny_data, tmp_path):
    first, _ = _run(tiny_data, tmp_path / "start", budget=40, epochs=4)
    # A learning rate that wrecks the network in one epoch: selection (on validation only) keeps the start.
    record, _ = _run(tiny_data, tmp_path / "wrecked", budget=10, epochs=1, lr=50.0, encoder_lr_scale=1.0,
                     pretrained=str(tmp_path / "start"), schedule="constant")
    assert record["selected_epoch"] == 0
    assert record["validation"]["dos_rel_l1"] == pytest.approx(first["validation"]["dos_rel_l1"], rel=1e-5)
    assert record["test"]["dos_rel_l1"] == pytest.approx(first["test"]["dos_rel_l1"], rel=1e-5)
