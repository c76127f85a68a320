"""Deterministic splits and nested label budgets."""

import json

import numpy as np
import pytest

from photossl.data.splits import (
    DatasetSplits,
    budget_indices,
    load_splits,
    make_splits,
    save_splits,
    splits_for_dataset,
    splits_path,
)
from photossl.errors import PhotosslError


def test_parts_are_disjoint_and_sized():
    splits = make_splits(1000, seed=3, n_test=200, n_validation=0.1, n_labelled=320)
    assert splits.sizes == {"pretrain": 700, "labelled": 320, "validation": 100, "test": 200}
    held_out = np.concatenate([splits.test, splits.validation, splits.labelled])
    assert len(np.unique(held_out)) == len(held_out)
    assert np.intersect1d(splits.pretrain, splits.test).size == 0
    assert np.intersect1d(splits.pretrain, splits.validation).size == 0
    # the pretraining pool is every non-held-out cell, labelled pool included
    assert set(splits.pretrain) | set(splits.test) | set(splits.validation) == set(range(1000))
    assert set(splits.labelled) <= set(splits.pretrain)
    for name in ("pretrain", "labelled", "validation", "test"):
        part = getattr(splits, name)
        assert part.dtype == np.int64 and np.all(np.diff(part) > 0)


def test_pretrain_can_exclude_labelled_pool():
    splits = make_splits(500, seed=1, n_test=50, n_validation=50, n_labelled=100, pretrain_includes_labelled=False)
    assert np.intersect1d(splits.pretrain, splits.labelled).size == 0
    assert len(splits.pretrain) == 300
    together = np.concatenate([splits.pretrain, splits.labelled, splits.validation, splits.test])
    assert np.array_equal(np.sort(together), np.arange(500))


def test_default_labelled_pool_is_everything_left():
    splits = make_splits(100, seed=0)
    assert splits.sizes == {"pretrain": 80, "labelled": 80, "validation": 10, "test": 10}


def test_deterministic_and_seed_dependent():
    first, again = make_splits(300, seed=5), make_splits(300, seed=5)
    assert first == again
    other = make_splits(300, seed=6)
    assert not np.array_equal(first.test, other.test)


def test_test_set_does_not_depend_on_other_sizes():
    # growing the labelled pool must not reshuffle test and validation
    small = make_splits(400, seed=2, n_test=40, n_validation=40, n_labelled=50)
    large = make_splits(400, seed=2, n_test=40, n_validation=40, n_labelled=200)
    assert np.array_equal(small.test, large.test) and np.array_equal(small.validation, large.validation)
    assert set(small.labelled) <= set(large.labelled)


@pytest.mark.parametrize("budget_seed", [0, 1, 7])
def test_budgets_are_nested(budget_seed):
    splits = make_splits(2000, seed=0, n_test=200, n_validation=200, n_labelled=1000)
    previous = np.array([], dtype=np.int64)
    for budget in (0, 50, 100, 200, 400, 800, 1000):
        chosen = budget_indices(splits, budget, seed=budget_seed)
        assert len(chosen) == budget == len(np.unique(chosen))
        assert set(previous) <= set(chosen)
        assert set(chosen) <= set(splits.labelled)
        assert np.intersect1d(chosen, np.concatenate([splits.validation, splits.test])).size == 0
        previous = chosen
    assert np.array_equal(budget_indices(splits, 100, seed=budget_seed), budget_indices(splits, 100, seed=budget_seed))


def test_budget_seeds_draw_different_sets():
    splits = make_splits(2000, seed=0, n_test=200, n_validation=200, n_labelled=1000)
    draws = [set(budget_indices(splits, 100, seed=s)) for s in range(3)]
    assert draws[0] != draws[1] and draws[1] != draws[2] and draws[0] != draws[2]
    # independent draws of 100 from 1000 overlap by about 10 cells, not by most of them
    assert len(draws[0] & draws[1]) < 40


def test_budget_depends_on_the_split_seed_too():
    a = make_splits(1000, seed=0, n_labelled=500)
    b = make_splits(1000, seed=1, n_labelled=500)
    assert not np.array_equal(budget_indices(a, 50, 0), budget_indices(b, 50, 0))


def test_too_large_budget_is_refused():
    splits = make_splits(4000, seed=0, n_test=400, n_validation=400, n_labelled=3200)
    with pytest.raises(PhotosslError, match="budget 5000 exceeds the labelled pool of 3200 cells"):
        budget_indices(splits, 5000)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_test": 60, "n_validation": 50}, "exceed the 100 cells"),
        ({"n_labelled": 90}, "n_labelled"),
        ({"n_test": 1.5}, "n_test"),
        ({"n_validation": -1}, "n_validation"),
        ({"n_test": "10"}, "n_test"),
        ({"seed": -2}, "seed"),
    ],
)
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(PhotosslError, match=message):
        make_splits(100, **kwargs)


def test_file_round_trip(tmp_path):
    splits = make_splits(321, seed=4, n_test=30, n_validation=0.05, n_labelled=100, pretrain_includes_labelled=False)
    path = save_splits(splits, tmp_path)
    assert path == tmp_path / "splits-seed4.json" == splits_path(tmp_path, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["splits-seed4.json"]  # no temporary file left behind
    record = json.loads(path.read_text())
    assert record["sizes"] == splits.sizes and record["n_cells"] == 321
    loaded = load_splits(path)
    assert isinstance(loaded, DatasetSplits) and loaded == splits
    assert load_splits(tmp_path, seed=4) == splits
    assert np.array_equal(budget_indices(loaded, 40, 2), budget_indices(splits, 40, 2))


def test_damaged_split_files_are_refused(tmp_path):
    path = save_splits(make_splits(50, seed=0), tmp_path)
    record = json.loads(path.read_text())
    record["test"] = record["test"][:-1]
    path.write_text(json.dumps(record))
    with pytest.raises(PhotosslError, match="damaged"):
        load_splits(path)
    record = json.loads(save_splits(make_splits(50, seed=0), tmp_path).read_text())
    record["validation"][0] = record["test"][0]
    path.write_text(json.dumps(record))
    with pytest.raises(PhotosslError, match="overlap"):
        load_splits(path)
    path.write_text("{not json")
    with pytest.raises(PhotosslError, match="cannot read"):
        load_splits(path)
    with pytest.raises(PhotosslError, match="not found"):
        load_splits(tmp_path, seed=9)


def test_splits_for_dataset_makes_then_reuses_and_refuses_changes(tmp_path):
    first = splits_for_dataset(tmp_path, 200, seed=1, n_test=20, n_validation=20, n_labelled=50)
    assert (tmp_path / "splits-seed1.json").exists()
    assert splits_for_dataset(tmp_path, 200, seed=1, n_test=20, n_validation=20, n_labelled=50) == first
    with pytest.raises(PhotosslError, match="different split"):
        splits_for_dataset(tmp_path, 200, seed=1, n_test=20, n_validation=20, n_labelled=60)
