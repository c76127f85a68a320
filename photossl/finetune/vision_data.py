"""The images a vision fine-tuning run reads: the dataset's 'train' split cut into validation images and labelled
pool, the run's label budget, and the 'test' split, read once at the end (:mod:`photossl.finetune.vision_config`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from photossl.errors import PhotosslError
from photossl.finetune.vision_config import VisionFinetuneConfig


@dataclass
class VisionImages:
    """A vision dataset's 'train' and 'test' images (N, C, H, W) in [0, 1] and int64 labels (N,), loaded once and
    shared by every run on the same ``key``."""

    key: tuple
    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    n_classes: int

    @staticmethod
    def key_of(config: VisionFinetuneConfig) -> tuple:
        """What the loaded images depend on (the digits' train/test split is drawn from ``split_seed``)."""
        return ("vision", config.dataset, config.data_root, config.image_size, config.split_seed)

    @classmethod
    def load(cls, config: VisionFinetuneConfig) -> VisionImages:
        from photossl.vision import dataset_info, load_vision_dataset

        info = dataset_info(config.dataset)
        size = config.image_size or info.size
        train = load_vision_dataset(config.dataset, config.data_root, "train", size, seed=config.split_seed)
        test = load_vision_dataset(config.dataset, config.data_root, "test", size, seed=config.split_seed)
        return cls(cls.key_of(config), train, test, info.n_classes)

    def close(self) -> None:
        """Nothing to release (the images are in memory); a cache closes photonic datasets and these alike."""


class VisionFinetuneData:
    """Split, label budget and image arrays of a config; :meth:`test` reads the test images (once per run).

    ``images``: the dataset already loaded for this config (:meth:`VisionImages.load`), to share between runs."""

    def __init__(self, config: VisionFinetuneConfig, images: VisionImages | None = None):
        from photossl.vision.splits import balanced_budget, vision_splits

        if images is not None and images.key != VisionImages.key_of(config):
            raise PhotosslError(f"the images given were loaded for {images.key}, not for {VisionImages.key_of(config)}")
        self.config = config
        self.images = images or VisionImages.load(config)
        labels = self.images.train[1].numpy()
        self.splits = vision_splits(labels, config.split_seed, config.n_validation)
        self.train_indices = balanced_budget(labels, self.splits, config.budget, config.seed)
        self._test_read = False

    @property
    def n_classes(self) -> int:
        return self.images.n_classes

    @property
    def in_channels(self) -> int:
        return int(self.images.train[0].shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.train[0].shape[-1])

    def _part(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return self.images.train[0][index], self.images.train[1][index]

    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._part(self.train_indices)

    def validation(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._part(self.splits.validation)

    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images; may be read once per run (the protocol: touched once, at the end)."""
        if self._test_read:
            raise PhotosslError("the test split was already read in this run")
        self._test_read = True
        return self.images.test

    def indices_record(self) -> dict:
        """Indices into the 'train' split of the training and validation images; the test split is the dataset's."""
        return {
            "dataset": self.config.dataset,
            "split_seed": self.splits.seed,
            "budget_seed": self.config.seed,
            "budget": self.config.budget,
            "split_sizes": {**self.splits.sizes, "test": int(self.images.test[1].numel())},
            "train": [int(i) for i in self.train_indices],
            "validation": [int(i) for i in self.splits.validation],
            "test": "the dataset's 'test' split",
        }
