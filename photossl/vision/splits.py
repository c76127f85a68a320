"""The labelled split of a vision dataset's 'train' images: a stratified validation part for model selection, the
labelled pool the rest, and class-balanced label budgets drawn from that pool. The dataset's own 'test' split is the
test set.

Both draws are functions of (labels, seeds, sizes) alone. A budget of one seed is nested in every larger one (the
20-label set lies inside the 40-label set) and independent of the other seeds' draws, as
:func:`photossl.data.budget_indices` draws photonic cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from photossl.errors import PhotosslError
from photossl.provenance import random_generator

# numpy SeedSequence entropy words of the two draws, so that they never share a stream.
_VALIDATION_STREAM = 0x7A11D
_BUDGET_STREAM = 0xB0D6E8


@dataclass(frozen=True, eq=False)
class VisionSplits:
    """Sorted int64 indices into the 'train' split: ``validation`` and the ``labelled`` pool (disjoint, together all
    ``n_train`` images)."""

    seed: int
    validation: np.ndarray
    labelled: np.ndarray
    n_train: int

    @property
    def sizes(self) -> dict[str, int]:
        return {"validation": int(len(self.validation)), "labelled": int(len(self.labelled))}


def validation_count(n_validation: int | float, n_train: int) -> int:
    """Images held out for validation: a count, or a fraction (0 < f < 1) of the ``n_train`` images, rounded."""
    if isinstance(n_validation, Integral) and not isinstance(n_validation, bool):
        count = int(n_validation)
    elif isinstance(n_validation, float) and 0 < n_validation < 1:
        count = round(n_validation * n_train)
    else:
        raise PhotosslError(f"n_validation must be a count >= 1 or a fraction in (0, 1), got {n_validation!r}")
    if not 1 <= count < n_train:
        raise PhotosslError(f"n_validation {n_validation} leaves no validation or no labelled images of {n_train}")
    return count


def _interleaved(labels: np.ndarray, members: np.ndarray, rng: np.random.Generator, proportional: bool) -> np.ndarray:
    """``members`` in an order whose every prefix is spread over the classes: each class shuffled, then the classes
    dealt round-robin (in a shuffled class order), either one image each per round or (``proportional``) in
    proportion to their sizes."""
    classes = np.unique(labels[members])
    priority = rng.permutation(len(classes))
    keys, ties, order = [], [], []
    for c, rank in zip(classes, priority):
        own = rng.permutation(members[labels[members] == c])
        position = np.arange(len(own), dtype=np.float64)
        keys.append((position + 0.5) / len(own) if proportional else position)
        ties.append(np.full(len(own), rank))
        order.append(own)
    keys, ties, order = np.concatenate(keys), np.concatenate(ties), np.concatenate(order)
    return order[np.lexsort((ties, keys))]


def vision_splits(labels: np.ndarray, seed: int, n_validation: int | float) -> VisionSplits:
    """Hold out ``n_validation`` images (a count or a fraction) of the 'train' split with ``labels`` (N,), stratified
    by class and drawn from ``seed``; the rest is the labelled pool."""
    labels = np.asarray(labels, dtype=np.int64)
    n_train = int(labels.size)
    count = validation_count(n_validation, n_train)
    order = _interleaved(labels, np.arange(n_train), random_generator(_VALIDATION_STREAM, seed), proportional=True)
    return VisionSplits(int(seed), np.sort(order[:count]), np.sort(order[count:]), n_train)


def balanced_budget(labels: np.ndarray, splits: VisionSplits, budget: int, seed: int) -> np.ndarray:
    """``budget`` images of the labelled pool (sorted indices into the 'train' split), the same number of each class
    (the first classes of a shuffled order get one more when it does not divide; a class that runs out leaves its
    share to the others); nested across budgets for one ``seed``."""
    if isinstance(budget, bool) or not isinstance(budget, Integral) or budget < 1:
        raise PhotosslError(f"budget must be a positive integer, got {budget!r}")
    if budget > len(splits.labelled):
        raise PhotosslError(f"budget {budget} exceeds the labelled pool of {len(splits.labelled)} images")
    rng = random_generator(_BUDGET_STREAM, splits.seed, int(seed))
    order = _interleaved(np.asarray(labels, dtype=np.int64), splits.labelled, rng, proportional=False)
    return np.sort(order[:budget])
