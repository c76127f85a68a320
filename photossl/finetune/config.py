"""The typed configuration of ``photossl finetune``: what to regress, from which encoder, on how many labels.

Protocol: the labelled cells are the first ``budget`` cells of the labelled pool's permutation for ``seed``
(:func:`photossl.data.splits.budget_indices`: nested across budgets, independent across seeds); the model is
selected (best epoch, early stopping) on the validation split only; the test split is read once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from photossl.config import build_config
from photossl.errors import PhotosslError

TARGETS = ("dos_eldiff", "dos", "gaps", "bands")
MODES = ("full", "frozen")
HEADS = ("mlp", "linear")
BASELINES = ("none", "ridge", "kernel-ridge")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "constant")
# Invariances that leave every target unchanged or act on it exactly (bands: k-points permuted).
AUGMENTATIONS = ("translate", "flip", "rot4", "d4", "half_translate")


def _choices(*values: str) -> dict:
    return {"choices": values}


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run depends on (the output folder aside).

    ``data``: a photossl dataset folder. ``pretrained``: a pretraining run folder or checkpoint; None trains the same
    network from scratch (the supervised baseline). ``baseline``: 'ridge' or 'kernel-ridge' fits the classical
    scikit-learn baseline instead of a network (the encoder, head and optimiser keys are then unused).

    Target: 'dos_eldiff' (the SIB-CL regression target, DOS / √ε̄ − 2πω; scored on the DOS), 'dos', 'gaps' (edges
    and gap-to-midgap ratio of every band pair) or 'bands' (all bands on the k-grid), of ``polarization``.
    Split: ``DIR/splits-seed<split_seed>.json`` when present (the file ``photossl pretrain`` also reads), else
    :func:`photossl.data.make_splits` with ``n_test`` / ``n_validation`` (counts or fractions; None: its defaults).
    Mode 'full' trains encoder and head, a pretrained encoder at ``lr * encoder_lr_scale`` (a fresh one at ``lr``);
    'frozen' trains the head on fixed features. The defaults (batch 16, encoder_lr_scale 0.1, cosine decay) were chosen
    on the validation split of ``pipelines/dos-quick.yaml``: against batch 64 and scale 1 they lowered the validation
    DOS error at 50 and 200 labels (docs/results/dos-quick/README.md). ``schedule``: the learning rate decays to 0 over
    ``epochs`` by a cosine, or stays constant. ``augment``: random invariance augmentations of the training cells (the
    DOS and gaps are invariant under rotations, mirrors and translations; band targets are permuted over k).
    ``patience``: stop after that many epochs without a better validation error (0 = never stop early).
    ``max_steps``: at most this many optimiser steps; the run then has ``min(epochs, ceil(max_steps / steps per
    epoch))`` epochs and the cosine decays over those, so one setting serves every label budget of a study (large
    budgets see more cells per epoch and need fewer epochs). None: ``epochs`` epochs whatever the budget.
    """

    data: str | None = None
    pretrained: str | None = None
    baseline: str = field(default="none", metadata=_choices(*BASELINES))
    label: str | None = None
    # what to learn
    target: str = field(default="dos_eldiff", metadata=_choices(*TARGETS))
    polarization: str = "tm"
    budget: int = 50
    seed: int = 0
    split_seed: int = 0
    n_test: int | float | None = None
    n_validation: int | float | None = None
    # model
    mode: str = field(default="full", metadata=_choices(*MODES))
    head: str = field(default="mlp", metadata=_choices(*HEADS))
    head_dims: list[int] = field(default_factory=lambda: [512, 512])
    encoder: str = "small"
    circular_padding: bool = True
    # optimisation
    epochs: int = 100
    max_steps: int | None = None
    patience: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    encoder_lr_scale: float = 0.1
    weight_decay: float = 1e-5
    schedule: str = field(default="cosine", metadata=_choices(*SCHEDULES))
    augment: list[str] = field(default_factory=lambda: ["translate", "d4"])
    # execution
    device: str = field(default="auto", metadata=_choices(*DEVICES))
    threads: int | None = None
    eval_batch_size: int = 512
    progress: bool = True

    def validate(self) -> None:
        for name in ("budget", "epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if value < 1:
                raise PhotosslError(f"config key '{name}' must be >= 1, got {value}")
        if self.max_steps is not None and self.max_steps < 1:
            raise PhotosslError(f"config key 'max_steps' must be >= 1, got {self.max_steps}")
        for name in ("seed", "split_seed", "patience"):
            if getattr(self, name) < 0:
                raise PhotosslError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise PhotosslError(f"config key 'threads' must be >= 1, got {self.threads}")
        if not self.lr > 0:
            raise PhotosslError(f"config key 'lr' must be > 0, got {self.lr}")
        if not self.encoder_lr_scale > 0:
            raise PhotosslError(
                f"config key 'encoder_lr_scale' must be > 0, got {self.encoder_lr_scale} (use mode 'frozen' to keep "
                "the encoder fixed)"
            )
        if not self.weight_decay >= 0:
            raise PhotosslError(f"config key 'weight_decay' must be >= 0, got {self.weight_decay}")
        if any(d < 1 for d in self.head_dims):
            raise PhotosslError(f"config key 'head_dims' must hold positive sizes, got {self.head_dims}")
        unknown = [name for name in self.augment if name not in AUGMENTATIONS]
        if unknown:
            raise PhotosslError(
                f"config key 'augment': unknown transformation '{unknown[0]}' (allowed: {', '.join(AUGMENTATIONS)})"
            )
        if self.polarization not in ("tm", "te"):
            raise PhotosslError(f"config key 'polarization' must be tm or te, got '{self.polarization}'")
        if self.baseline != "none" and self.pretrained is not None:
            raise PhotosslError("a classical baseline uses no pretrained encoder: drop --pretrained or --baseline")
        if self.mode == "frozen" and self.pretrained is None and self.baseline == "none":
            raise PhotosslError("mode 'frozen' needs a pretrained encoder (--pretrained RUN); without one use 'full'")

    def epochs_for(self, n_train: int) -> int:
        """Epochs a run on ``n_train`` labelled cells trains for: ``epochs``, capped by ``max_steps``."""
        if self.max_steps is None:
            return self.epochs
        steps_per_epoch = -(-n_train // self.batch_size)
        return max(1, min(self.epochs, -(-self.max_steps // steps_per_epoch)))

    @property
    def method(self) -> str:
        """The label recorded in results: ``label`` if set, else the baseline, 'supervised' or the run's method."""
        if self.label:
            return self.label
        if self.baseline != "none":
            return self.baseline
        return "supervised" if self.pretrained is None else "pretrained"

    @property
    def variable(self) -> str:
        """The dataset variable holding the target."""
        if self.target in ("dos", "dos_eldiff"):
            return self.target
        return f"{self.target}_{self.polarization}"


def make_finetune_config(values: dict) -> FinetuneConfig:
    """A validated :class:`FinetuneConfig` from a plain mapping (unknown keys and bad values raise PhotosslError)."""
    return build_config(FinetuneConfig, values)
