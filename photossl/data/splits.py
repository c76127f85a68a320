"""Deterministic dataset splits (pretraining pool, labelled pool, validation, test) and nested label budgets.

A split is a pure function of (n_cells, seed, sizes): one permutation of the cells, cut into test, validation and
labelled pool in that order. Indices are positions along the ``cell`` dimension, which equal the global cell index
of a dataset opened with :func:`photossl.data.open_dataset`.

The unlabelled pretraining pool is every cell outside validation and test (SIB-CL and E-SSL pretrain on all non-test
cells; photossl also keeps the validation cells out so that model selection sees cells no stage has trained on).
With ``pretrain_includes_labelled=False`` the labelled pool is removed from it as well, for studies that want the
pretraining and fine-tuning cells disjoint.

Label budgets are drawn from the labelled pool with a permutation fixed by (split seed, budget seed) and truncated, so
for one budget seed the 100-label set contains the 50-label set, while different budget seeds draw independently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from photossl.errors import PhotosslError
from photossl.files import write_json_atomic
from photossl.provenance import random_generator

SPLITS_FORMAT = "photossl-splits"
SPLITS_FORMAT_VERSION = 1
# Separate random streams for the split permutation and for budget draws (numpy SeedSequence entropy words).
_SPLIT_STREAM = 0x5B117
_BUDGET_STREAM = 0xB0D6E7
_PARTS = ("pretrain", "labelled", "validation", "test")


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """Index arrays (int64, sorted) of the four parts of one split; test, validation and labelled are disjoint."""

    seed: int
    pretrain: np.ndarray
    labelled: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    n_cells: int | None = None
    pretrain_includes_labelled: bool = True

    @property
    def sizes(self) -> dict[str, int]:
        return {name: int(len(getattr(self, name))) for name in _PARTS}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatasetSplits):
            return NotImplemented
        return (
            self.seed == other.seed
            and self.n_cells == other.n_cells
            and self.pretrain_includes_labelled == other.pretrain_includes_labelled
            and all(np.array_equal(getattr(self, name), getattr(other, name)) for name in _PARTS)
        )


def _count(value: int | float, n_cells: int, name: str) -> int:
    """A count given as an int, or as a fraction in [0, 1] of ``n_cells`` (rounded to the nearest cell)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise PhotosslError(f"{name} must be a count (int) or a fraction (float in [0, 1]), got {value!r}")
    if isinstance(value, Integral):
        if value < 0:
            raise PhotosslError(f"{name} must be >= 0, got {value}")
        return int(value)
    if not 0.0 <= float(value) <= 1.0:
        raise PhotosslError(f"{name} as a fraction must lie in [0, 1], got {value}")
    return int(round(float(value) * n_cells))


def _check_seed(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise PhotosslError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def make_splits(
    n_cells: int,
    seed: int = 0,
    n_test: int | float = 0.1,
    n_validation: int | float = 0.1,
    n_labelled: int | float | None = None,
    pretrain_includes_labelled: bool = True,
) -> DatasetSplits:
    """Split ``n_cells`` cells deterministically from ``seed``.

    ``n_test``, ``n_validation`` and ``n_labelled`` are counts (int) or fractions of ``n_cells`` (float);
    ``n_labelled=None`` puts every cell outside test and validation into the labelled pool. The SIB-CL protocol on a
    22k-cell set is ``n_test=2000, n_validation=..., n_labelled=3200``.
    """
    if isinstance(n_cells, bool) or not isinstance(n_cells, Integral) or n_cells < 1:
        raise PhotosslError(f"n_cells must be a positive integer, got {n_cells!r}")
    seed = _check_seed(seed)
    test = _count(n_test, n_cells, "n_test")
    validation = _count(n_validation, n_cells, "n_validation")
    rest = n_cells - test - validation
    if rest < 0:
        raise PhotosslError(f"n_test ({test}) + n_validation ({validation}) exceed the {n_cells} cells")
    labelled = rest if n_labelled is None else _count(n_labelled, n_cells, "n_labelled")
    if labelled > rest:
        raise PhotosslError(
            f"n_labelled ({labelled}) exceeds the {rest} cells left after test ({test}) and validation ({validation})"
        )
    order = random_generator(_SPLIT_STREAM, seed).permutation(n_cells)
    cuts = np.cumsum([test, validation, labelled])
    test_idx, validation_idx, labelled_idx, unlabelled_only = np.split(order, cuts)
    pretrain = np.concatenate([labelled_idx, unlabelled_only]) if pretrain_includes_labelled else unlabelled_only
    return DatasetSplits(
        seed=seed,
        pretrain=np.sort(pretrain).astype(np.int64),
        labelled=np.sort(labelled_idx).astype(np.int64),
        validation=np.sort(validation_idx).astype(np.int64),
        test=np.sort(test_idx).astype(np.int64),
        n_cells=int(n_cells),
        pretrain_includes_labelled=bool(pretrain_includes_labelled),
    )


def budget_indices(splits: DatasetSplits, budget: int, seed: int = 0) -> np.ndarray:
    """The first ``budget`` cells (sorted int64 indices) of the labelled pool's permutation for ``seed``.

    Nested for one ``seed`` (budget 50 is a subset of budget 100); independent across seeds.
    """
    if isinstance(budget, bool) or not isinstance(budget, Integral) or budget < 0:
        raise PhotosslError(f"budget must be a non-negative integer, got {budget!r}")
    seed = _check_seed(seed)
    pool = np.sort(np.asarray(splits.labelled, dtype=np.int64))
    if budget > len(pool):
        raise PhotosslError(f"budget {budget} exceeds the labelled pool of {len(pool)} cells")
    order = random_generator(_BUDGET_STREAM, splits.seed, seed).permutation(len(pool))
    return np.sort(pool[order[:budget]])


def splits_path(directory: str | Path, seed: int) -> Path:
    """``DIR/splits-seed<S>.json``."""
    return Path(directory) / f"splits-seed{_check_seed(seed)}.json"


def save_splits(splits: DatasetSplits, directory: str | Path) -> Path:
    """Write ``splits`` atomically to ``DIR/splits-seed<S>.json`` and return the path."""
    path = splits_path(directory, splits.seed)
    record = {
        "format": SPLITS_FORMAT,
        "format_version": SPLITS_FORMAT_VERSION,
        "seed": int(splits.seed),
        "n_cells": splits.n_cells,
        "pretrain_includes_labelled": bool(splits.pretrain_includes_labelled),
        "sizes": splits.sizes,
        **{name: [int(i) for i in getattr(splits, name)] for name in _PARTS},
    }
    write_json_atomic(path, record, indent=None, separators=(",", ":"))
    return path


def load_splits(path: str | Path, seed: int | None = None) -> DatasetSplits:
    """Read a split file, or ``DIR/splits-seed<seed>.json`` when ``path`` is a directory; checks it is consistent."""
    path = Path(path)
    if path.is_dir():
        if seed is None:
            raise PhotosslError(f"{path} is a directory: pass the split seed to pick splits-seed<S>.json")
        path = splits_path(path, seed)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PhotosslError(f"split file not found: {path}") from None
    except (OSError, ValueError) as err:
        raise PhotosslError(f"cannot read split file {path}: {err}") from None
    if not isinstance(record, dict) or record.get("format") != SPLITS_FORMAT:
        raise PhotosslError(f"{path} is not a photossl split file")
    try:
        parts = {name: np.asarray(record[name], dtype=np.int64).reshape(-1) for name in _PARTS}
        splits = DatasetSplits(
            seed=int(record["seed"]),
            n_cells=None if record.get("n_cells") is None else int(record["n_cells"]),
            pretrain_includes_labelled=bool(record.get("pretrain_includes_labelled", True)),
            **parts,
        )
        sizes = {name: int(record["sizes"][name]) for name in _PARTS}
    except (KeyError, TypeError, ValueError) as err:
        raise PhotosslError(f"split file {path} is malformed: {err}") from None
    if seed is not None and splits.seed != seed:
        raise PhotosslError(f"{path} holds the splits of seed {splits.seed}, not {seed}")
    if sizes != splits.sizes:
        raise PhotosslError(f"split file {path} is damaged: recorded sizes {sizes} != stored {splits.sizes}")
    _check_consistent(splits, path)
    return splits


def _check_consistent(splits: DatasetSplits, source: Path) -> None:
    held_out = np.concatenate([splits.test, splits.validation, splits.labelled])
    if len(np.unique(held_out)) != len(held_out):
        raise PhotosslError(f"split file {source}: test, validation and labelled pool overlap")
    if np.intersect1d(splits.pretrain, np.concatenate([splits.test, splits.validation])).size:
        raise PhotosslError(f"split file {source}: the pretraining pool overlaps validation or test")
    everything = np.concatenate([held_out, splits.pretrain])
    limit = splits.n_cells if splits.n_cells is not None else np.inf
    if everything.size and (everything.min() < 0 or everything.max() >= limit):
        raise PhotosslError(f"split file {source}: indices outside [0, {splits.n_cells})")


def splits_for_dataset(directory: str | Path, n_cells: int, seed: int = 0, **sizes) -> DatasetSplits:
    """The split of seed ``seed`` stored in ``directory``, made and saved there first if absent.

    ``sizes`` are :func:`make_splits` keywords. An existing file must match them (and ``n_cells``) exactly, so that a
    changed split request never silently reuses an old file.
    """
    wanted = make_splits(n_cells, seed, **sizes)
    path = splits_path(directory, seed)
    if not path.exists():
        save_splits(wanted, directory)
        return wanted
    stored = load_splits(path)
    if stored != wanted:
        raise PhotosslError(
            f"{path} holds a different split (sizes {stored.sizes}, n_cells {stored.n_cells}) than requested "
            f"(sizes {wanted.sizes}, n_cells {n_cells}); delete it or use another seed"
        )
    return stored
