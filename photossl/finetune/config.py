"""The typed configuration of ``photossl finetune``: what to regress, from which encoder, on how many labels.

Protocol: the labelled cells are the first ``budget`` cells of the labelled pool's permutation for ``seed``
(:func:`photossl.data.splits.budget_indices`: nested across budgets, independent across seeds); the model is
selected (best epoch, early stopping) on the validation split only; the test split is read once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from photossl.config import EXECUTION, build_config
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

    ``data``: a photossl dataset folder. ``pretrained``: a pretraining run folder or checkpoint, or a fine-tuning
    run folder FT (e.g. a network trained on rough labels: its encoder, and its head and target scaling when it
    regressed the same target with the same head, are the starting point); None trains the same
    network from scratch (the supervised baseline). ``baseline``: 'ridge' or 'kernel-ridge' fits the classical
    scikit-learn baseline instead of a network (the encoder, head and optimiser keys are then unused).

    Target: 'dos_eldiff' (the SIB-CL regression target, DOS / √ε̄ − 2πω; scored on the DOS), 'dos', 'gaps'
    (edges and gap-to-midgap ratio of every band pair) or 'bands' (all bands on the k-grid), of ``polarization``.
    Split: ``DIR/splits-seed<split_seed>.json`` when present (the file ``photossl pretrain`` also reads), else
    :func:`photossl.data.make_splits` with ``n_test`` / ``n_validation`` (counts or fractions; None: its defaults).
    Mode 'full' trains encoder and head, a pretrained encoder at ``lr * encoder_lr_scale`` (a fresh one at ``lr``);
    'frozen' trains the head on fixed features. The defaults (batch 16, encoder_lr_scale 0.1, cosine decay) were chosen
    on the validation split of ``pipelines/dos-quick.yaml``: against batch 64 and scale 1 they lowered the validation
    DOS error at 50 and 200 labels (docs/results/dos-quick/README.md). ``schedule``: the learning rate decays to 0 over
    ``epochs`` by a cosine, or stays constant. ``augment``: random invariance augmentations of the training cells (the
    DOS and gaps are invariant under rotations, mirrors and translations; band targets are permuted over k).
    ``exact_symmetry``: wrap the encoder so that the network is exactly invariant to the eight rotations and mirrors
    and to every integer roll of the cell (:class:`photossl.models.ExactSymmetryEncoder`; 'small' and 'essl' with
    circular padding, cell sizes a multiple of 8); a 'bands' output is made exactly equivariant (k-points permute).
    A run pretrained with it keeps it whatever this key says. Costs about 8× an encoder pass. ``encoder: p4m`` (a
    p4m group-convolution network, :class:`photossl.models.P4MEncoder`) has the same exact symmetry by construction,
    with weights shared among the eight operations, at about 3× a plain 'small' pass.
    ``patience``: stop after that many epochs without a better validation error (0 = never stop early).
    ``max_steps``: at most this many optimiser steps; the run then has ``min(epochs, ceil(max_steps / steps per
    epoch))`` epochs and the cosine decays over those, so one setting serves every label budget of a study (large
    budgets see more cells per epoch and need fewer epochs). A mapping {labels: steps} makes the cap grow with the
    budget: a run on n labelled cells is capped at the steps of the largest key <= n (the first key's below it), e.g.
    ``{0: 2000, 1600: 6000}``: 2000 steps up to 1599 labels (all 50 epochs up to 640 labels at batch 16), 6000 from
    1600 (50 epochs at 1600, 30 at 3200). None: ``epochs`` epochs whatever the budget.
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
    exact_symmetry: bool = False
    # optimisation
    epochs: int = 100
    max_steps: int | dict[int, int] | None = None
    patience: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    encoder_lr_scale: float = 0.1
    weight_decay: float = 1e-5
    schedule: str = field(default="cosine", metadata=_choices(*SCHEDULES))
    augment: list[str] = field(default_factory=lambda: ["translate", "d4"])
    # execution: these never make a finished run stale
    device: str = field(default="auto", metadata={**_choices(*DEVICES), **EXECUTION})
    threads: int | None = field(default=None, metadata=EXECUTION)
    eval_batch_size: int = field(default=512, metadata=EXECUTION)
    progress: bool = field(default=True, metadata=EXECUTION)

    def validate(self) -> None:
        for name in ("budget", "epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if value < 1:
                raise PhotosslError(f"config key '{name}' must be >= 1, got {value}")
        if isinstance(self.max_steps, dict):
            self.max_steps = step_schedule(self.max_steps)
        elif self.max_steps is not None and self.max_steps < 1:
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
        if self.exact_symmetry and self.baseline == "none" and self.pretrained is None and (
                self.encoder not in ("small", "essl", "p4m") or not self.circular_padding):
            raise PhotosslError("config key 'exact_symmetry' needs the 'small' or 'essl' encoder with circular padding "
                                "(or 'p4m', exactly symmetric by construction)")
        if self.mode == "frozen" and self.pretrained is None and self.baseline == "none":
            raise PhotosslError("mode 'frozen' needs a pretrained encoder (--pretrained RUN); without one use 'full'")

    def step_cap(self, n_train: int) -> int | None:
        """The most optimiser steps of a run on ``n_train`` labelled cells (None: no cap), from ``max_steps``."""
        if self.max_steps is None or isinstance(self.max_steps, int):
            return self.max_steps
        schedule = step_schedule(self.max_steps)
        keys = [k for k in schedule if k <= n_train]
        return schedule[keys[-1] if keys else next(iter(schedule))]

    def epochs_for(self, n_train: int) -> int:
        """Epochs a run on ``n_train`` labelled cells trains for: ``epochs``, capped by :meth:`step_cap`."""
        cap = self.step_cap(n_train)
        if cap is None:
            return self.epochs
        steps_per_epoch = -(-n_train // self.batch_size)
        return max(1, min(self.epochs, -(-cap // steps_per_epoch)))

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


def step_schedule(values: dict) -> dict[int, int]:
    """A ``max_steps`` mapping {labels: steps} with integer keys (as written, or as text after a round trip through
    JSON), sorted by labels; PhotosslError for a bad one."""
    if not values:
        raise PhotosslError("config key 'max_steps' as a mapping needs at least one 'labels: steps' entry")
    schedule = {}
    for key, steps in values.items():
        try:
            labels = int(key) if not isinstance(key, (bool, float)) else None
        except ValueError:
            labels = None
        if labels is None or labels < 0:
            raise PhotosslError(f"config key 'max_steps': labels must be integers >= 0, got {key!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise PhotosslError(f"config key 'max_steps': steps must be integers >= 1, got {steps!r} at {key}")
        schedule[labels] = steps
    return dict(sorted(schedule.items()))


def make_finetune_config(values: dict) -> FinetuneConfig:
    """A validated :class:`FinetuneConfig` from a plain mapping (unknown keys and bad values raise PhotosslError)."""
    return build_config(FinetuneConfig, values)
