"""Self-supervised pretraining: configs, methods (base loss × E-SSL head × CARE term, one module per part in
:mod:`photossl.training.methods`), view pipelines, the training loop with checkpoints and resume, and the probes that
read out frozen features.

Other code loads a trained encoder with :func:`load_pretrained` (a run folder or ``RUN/checkpoint.pt``).
"""

from photossl.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, load_pretrained
from photossl.training.config import (
    BASE_LOSSES,
    DEFAULT_LAMBDA_CARE,
    MODIFIERS,
    MethodSpec,
    PretrainConfig,
    make_config,
    parse_method,
    resolve_defaults,
)
from photossl.training.methods import Objective, PretrainModel, build_encoder_from_config, build_model
from photossl.training.probes import (
    LinearProbeResult,
    RidgeProbe,
    encode,
    fit_ridge,
    knn_accuracy,
    linear_probe,
    ridge_probe_error,
)
from photossl.training.resume import resume_config
from photossl.training.schedule import WarmupCosineSchedule, warmup_cosine
from photossl.training.trainer import pretrain, train_step
from photossl.training.views import PhotonicsViews, Views, VisionViews

__all__ = [
    "BASE_LOSSES",
    "CHECKPOINT_NAME",
    "DEFAULT_LAMBDA_CARE",
    "MODIFIERS",
    "LinearProbeResult",
    "MethodSpec",
    "Objective",
    "PhotonicsViews",
    "PretrainConfig",
    "PretrainModel",
    "RidgeProbe",
    "Views",
    "VisionViews",
    "WarmupCosineSchedule",
    "build_encoder_from_config",
    "build_model",
    "encode",
    "fit_ridge",
    "knn_accuracy",
    "linear_probe",
    "load_checkpoint",
    "load_pretrained",
    "make_config",
    "parse_method",
    "pretrain",
    "resolve_defaults",
    "resume_config",
    "ridge_probe_error",
    "train_step",
    "warmup_cosine",
]
