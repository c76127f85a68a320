"""The tensors a pretraining run reads: its unlabelled pool, an optional surrogate pool, and the monitor sets.

Photonics: the pretraining pool of the dataset's split (``DIR/splits-seed<S>.json`` when present, else
:func:`photossl.data.splits.make_splits` with its default sizes, nothing written); the ridge probe fits on the
first ``probe_train`` cells of the labelled pool's budget order and scores ``probe_val`` validation cells.
Vision: the training split (STL-10: train + unlabelled) for pretraining; the kNN monitor and the final linear probe
use the labelled train split as bank / training set and the test split for scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from photossl.errors import PhotosslError
from photossl.training.config import PretrainConfig


@dataclass
class TrainingData:
    """pretrain: (N, C, H, W) float32 on the CPU; surrogate likewise or None.

    monitor: 'ridge' (photonics) with (inputs, targets) of the probe's training cells and (inputs, targets[,
    offset]) of its validation cells (offset = dos − dos_eldiff, added back before scoring), or 'knn' (vision)
    with labelled (images, labels) of the train and test splits; ``info`` is recorded in run.json.
    """

    pretrain: torch.Tensor
    surrogate: torch.Tensor | None
    monitor_kind: str
    monitor_train: tuple[torch.Tensor, torch.Tensor] | None = None
    monitor_test: tuple[torch.Tensor, ...] | None = None
    n_classes: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return int(self.pretrain.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.pretrain.shape[-1])


def _limit(indices: np.ndarray, limit: int | None) -> np.ndarray:
    return indices if limit is None else indices[:limit]


def _photonics_splits(path: Path, n_cells: int, seed: int):
    from photossl.data.splits import load_splits, make_splits, splits_path

    if path.is_dir() and splits_path(path, seed).exists():
        return load_splits(splits_path(path, seed), seed)
    return make_splits(n_cells, seed)


def load_photonics(config: PretrainConfig) -> TrainingData:
    from photossl.data.loaders import budget_indices, load_arrays, open_cells

    if config.data is None:
        raise PhotosslError("the photonics track needs a dataset: pass --data DIR (written by photossl generate)")
    path = Path(config.data)
    if not path.exists():
        raise PhotosslError(f"dataset not found: {path}")
    dataset = open_cells(path)
    try:
        n_cells = int(dataset.sizes["cell"])
        splits = _photonics_splits(path, n_cells, config.split_seed)
        pretrain_idx = _limit(splits.pretrain, config.limit_samples)
        pretrain, _ = load_arrays(dataset, None, pretrain_idx)
        n_train = min(config.probe_train, len(splits.labelled))
        probe_idx = budget_indices(splits, n_train, 0)
        val_idx = splits.validation[: config.probe_val]
        monitor_train = monitor_test = None
        monitor = "none"
        if config.probe_target in dataset and n_train >= 2 and len(val_idx) >= 1:
            monitor = "ridge"
            monitor_train = load_arrays(dataset, config.probe_target, probe_idx, flatten=True)
            monitor_test = load_arrays(dataset, config.probe_target, val_idx, flatten=True)
            if config.probe_target == "dos_eldiff" and "dos" in dataset:  # score the DOS itself, as SIB-CL does
                _, dos = load_arrays(dataset, "dos", val_idx, flatten=True)
                monitor_test = (*monitor_test, dos - monitor_test[1])
    finally:
        dataset.close()
    surrogate = None
    if config.surrogate is not None and config.surrogate_fraction > 0:
        surrogate_path = Path(config.surrogate)
        if not surrogate_path.exists():
            raise PhotosslError(f"surrogate dataset not found: {surrogate_path}")
        surrogate, _ = load_arrays(surrogate_path, None, None)
        if surrogate.shape[1:] != pretrain.shape[1:]:
            raise PhotosslError(
                f"surrogate cells {tuple(surrogate.shape[1:])} differ from the dataset's {tuple(pretrain.shape[1:])}"
            )
    info = {
        "data": str(path),
        "n_cells": n_cells,
        "split_seed": splits.seed,
        "split_sizes": splits.sizes,
        "pretrain_cells": int(len(pretrain_idx)),
        "probe": monitor,
        "probe_train_cells": int(n_train) if monitor == "ridge" else 0,
        "probe_val_cells": int(len(val_idx)) if monitor == "ridge" else 0,
        "surrogate_cells": 0 if surrogate is None else int(surrogate.shape[0]),
    }
    return TrainingData(pretrain, surrogate, monitor, monitor_train, monitor_test, None, info)


def load_vision(config: PretrainConfig) -> TrainingData:
    from photossl.vision import dataset_info, load_vision_dataset

    info = dataset_info(config.dataset)
    size = config.image_size or info.size
    train = load_vision_dataset(config.dataset, config.data_root, "train", size, seed=config.split_seed)
    if config.dataset == "stl10":  # pretrain on the labelled and the 100k unlabelled images
        pretrain, _ = load_vision_dataset(config.dataset, config.data_root, "train+unlabeled", size)
    else:
        pretrain = train[0]
    if config.limit_samples is not None:
        pretrain = pretrain[: config.limit_samples]
    test = load_vision_dataset(config.dataset, config.data_root, "test", size, seed=config.split_seed)
    if config.limit_samples is not None:
        train = (train[0][: config.limit_samples], train[1][: config.limit_samples])
        test = (test[0][: config.limit_samples], test[1][: config.limit_samples])
    record = {
        "dataset": config.dataset,
        "image_size": size,
        "pretrain_images": int(pretrain.shape[0]),
        "monitor_bank": int(train[0].shape[0]),
        "monitor_test": int(test[0].shape[0]),
    }
    return TrainingData(pretrain, None, "knn", train, test, info.n_classes, record)


def load_training_data(config: PretrainConfig) -> TrainingData:
    """The data of a (resolved) config's track."""
    return load_photonics(config) if config.track == "photonics" else load_vision(config)
