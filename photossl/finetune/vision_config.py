"""The typed configuration of fine-tuning on a vision dataset's labels: a classifier on a label budget, or the linear
probe of frozen features.

Protocol, as for photonic cells (:mod:`photossl.finetune.config`): the validation images are a stratified part of the
dataset's 'train' split and the labelled pool is the rest (:func:`photossl.vision.splits.vision_splits`); the
``budget`` training images are drawn from the pool class-balanced (:func:`photossl.vision.splits.balanced_budget`:
nested across budgets, independent across seeds); the epoch is selected on the validation images only; the 'test'
split is read once, at the end. The metric is the test top-1 error, 1 − accuracy (lower is better, as every study
metric).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from photossl.config import EXECUTION, build_config
from photossl.errors import PhotosslError

MODES = ("full", "frozen")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")
METRIC = "top1_error"


def _choices(*values: str) -> dict:
    return {"choices": values}


@dataclass
class VisionFinetuneConfig:
    """Everything a vision fine-tuning run depends on (the output folder aside).

    Data: ``dataset`` (a name of :data:`photossl.vision.VISION_DATASETS`, the files of the CIFAR and STL-10 sets in
    ``data_root``) at ``image_size`` (None: the dataset's default); ``split_seed`` draws the validation part
    (``n_validation``: a count, or a fraction of the 'train' split) and, for the digits, the train/test split itself.
    ``pretrained``: a pretraining run folder or checkpoint of the vision track on the same dataset; None starts from an
    encoder initialised from ``seed`` (``encoder``; None: the one pretraining picks for the dataset).

    ``mode`` 'full' trains encoder and a linear head with cross-entropy (a pretrained encoder at
    ``lr * encoder_lr_scale``) by ``optimizer`` with ``warmup_epochs`` of linear warm-up, then a cosine decay to 0
    (``schedule: cosine``) or a constant rate; ``lr`` is the rate itself, not scaled by the batch. ``crop_scale``:
    random resized crops of the training images over these area fractions (None: no augmentation), ``flip_p``:
    horizontal flips (a mirrored digit is no digit: 0 there). ``patience``: stop after that many epochs without a lower
    validation error (0 = never stop early).
    ``mode`` 'frozen' reads the fixed features out with the shared linear probe (:func:`photossl.training.linear_probe`:
    standardised features, Adam, ``epochs`` epochs, seeded by ``seed``); without ``pretrained`` that is the untrained
    encoder's floor, which every method has to beat.
    """

    dataset: str = "digits"
    data_root: str | None = None
    image_size: int | None = None
    pretrained: str | None = None
    label: str | None = None
    budget: int = 100
    seed: int = 0
    split_seed: int = 0
    n_validation: int | float = 0.2
    # model
    mode: str = field(default="full", metadata=_choices(*MODES))
    encoder: str | None = None
    # optimisation
    epochs: int = 50
    patience: int = 0
    batch_size: int = 256
    optimizer: str = field(default="sgd", metadata=_choices(*OPTIMIZERS))
    lr: float = 0.1
    encoder_lr_scale: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0
    schedule: str = field(default="cosine", metadata=_choices(*SCHEDULES))
    crop_scale: list[float] | None = field(default_factory=lambda: [0.6, 1.0])
    flip_p: float = 0.0
    # execution: these never make a finished run stale
    device: str = field(default="auto", metadata={**_choices(*DEVICES), **EXECUTION})
    threads: int | None = field(default=None, metadata=EXECUTION)
    eval_batch_size: int = field(default=512, metadata=EXECUTION)
    progress: bool = field(default=True, metadata=EXECUTION)

    def validate(self) -> None:
        from photossl.vision.info import dataset_info

        dataset_info(self.dataset)  # an unknown name lists the known ones
        for name in ("budget", "epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise PhotosslError(f"config key '{name}' must be >= 1, got {getattr(self, name)}")
        for name in ("seed", "split_seed", "patience"):
            if getattr(self, name) < 0:
                raise PhotosslError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        for name in ("image_size", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PhotosslError(f"config key '{name}' must be >= 1, got {value}")
        n = self.n_validation
        if not (n >= 1 if isinstance(n, int) else 0 < n < 1):
            raise PhotosslError(f"config key 'n_validation' must be a count >= 1 or a fraction in (0, 1), got {n}")
        for name in ("lr", "encoder_lr_scale"):
            if not getattr(self, name) > 0:
                raise PhotosslError(f"config key '{name}' must be > 0, got {getattr(self, name)}")
        for name in ("weight_decay", "warmup_epochs"):
            if not getattr(self, name) >= 0:
                raise PhotosslError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.momentum < 1:
            raise PhotosslError(f"config key 'momentum' must lie in [0, 1), got {self.momentum}")
        if not 0 <= self.flip_p <= 1:
            raise PhotosslError(f"config key 'flip_p' must lie in [0, 1], got {self.flip_p}")
        scale = self.crop_scale
        if scale is not None and (len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1):
            raise PhotosslError(f"config key 'crop_scale' must be two area fractions 0 < low <= high <= 1, got {scale}")

    @property
    def method(self) -> str:
        """The label recorded in results: ``label`` if set, else 'supervised', 'random-init' or 'pretrained'."""
        if self.label:
            return self.label
        if self.pretrained is not None:
            return "pretrained"
        return "random-init" if self.mode == "frozen" else "supervised"


def make_vision_finetune_config(values: dict) -> VisionFinetuneConfig:
    """A validated :class:`VisionFinetuneConfig` from a plain mapping (unknown keys and bad values raise
    PhotosslError)."""
    return build_config(VisionFinetuneConfig, values)
