"""The labelled split of a vision train set: stratified validation, class-balanced budgets nested across budgets and
independent across seeds, all functions of the labels and seeds alone."""

import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.vision.splits import balanced_budget, validation_count, vision_splits

LABELS = np.repeat(np.arange(5), [40, 30, 30, 20, 80])  # 200 images of 5 unequal classes, in class order


def test_validation_is_stratified_and_disjoint_from_the_pool():
    splits = vision_splits(LABELS, seed=3, n_validation=0.2)
    assert splits.sizes == {"validation": 40, "labelled": 160}
    assert not set(splits.validation) & set(splits.labelled)
    assert np.array_equal(np.sort(np.concatenate([splits.validation, splits.labelled])), np.arange(200))
    np.testing.assert_array_equal(np.bincount(LABELS[splits.validation]), [8, 6, 6, 4, 16])
    again = vision_splits(LABELS, seed=3, n_validation=40)
    assert np.array_equal(again.validation, splits.validation)
    assert not np.array_equal(vision_splits(LABELS, seed=4, n_validation=40).validation, splits.validation)


def test_budgets_are_balanced_nested_and_independent_across_seeds():
    splits = vision_splits(LABELS, seed=0, n_validation=40)
    small, large = balanced_budget(LABELS, splits, 10, seed=1), balanced_budget(LABELS, splits, 23, seed=1)
    assert np.bincount(LABELS[small], minlength=5).tolist() == [2, 2, 2, 2, 2]
    assert sorted(np.bincount(LABELS[large], minlength=5).tolist()) == [4, 4, 5, 5, 5]
    assert set(small) <= set(large) <= set(splits.labelled)
    assert not np.array_equal(balanced_budget(LABELS, splits, 10, seed=2), small)
    # a class that runs out (class 3 holds 16 pool images) leaves its share to the others
    counts = np.bincount(LABELS[balanced_budget(LABELS, splits, 120, seed=0)], minlength=5)
    assert counts[3] == 16 and counts.sum() == 120 and counts.max() - np.sort(counts)[-2] <= 1


@pytest.mark.parametrize("n_validation, fragment", [(0, "leaves no validation"), (1.5, "must be a count"),
                                                    (200, "leaves no validation or no labelled")])
def test_bad_validation_sizes(n_validation, fragment):
    with pytest.raises(PhotosslError, match=fragment):
        validation_count(n_validation, 200)


def test_a_budget_beyond_the_pool_is_refused():
    splits = vision_splits(LABELS, seed=0, n_validation=40)
    with pytest.raises(PhotosslError, match="budget 161 exceeds the labelled pool of 160 images"):
        balanced_budget(LABELS, splits, 161, seed=0)
