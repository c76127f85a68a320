"""Fine-tuning on a label budget (network from a pretrained or fresh encoder, or a classical scikit-learn baseline),
validation-only model selection, one test evaluation, and prediction with the resulting surrogate."""

from photossl.finetune.baselines import ClassicalModel, classical_features
from photossl.finetune.config import FinetuneConfig, make_finetune_config
from photossl.finetune.data import FinetuneData, resolve_splits
from photossl.finetune.network import Regressor
from photossl.finetune.outputs import METRICS_FILE, MODEL_FILE
from photossl.finetune.predict import FinetunedModel, load_finetuned, predict_to_netcdf, predictions_dataset, read_cells
from photossl.finetune.scaling import TargetScaler
from photossl.finetune.targets import PRIMARY_METRIC, TargetInfo, score, target_info
from photossl.finetune.trainer import finetune

__all__ = [
    "METRICS_FILE",
    "MODEL_FILE",
    "PRIMARY_METRIC",
    "ClassicalModel",
    "FinetuneConfig",
    "FinetuneData",
    "FinetunedModel",
    "Regressor",
    "TargetInfo",
    "TargetScaler",
    "classical_features",
    "finetune",
    "load_finetuned",
    "make_finetune_config",
    "predict_to_netcdf",
    "predictions_dataset",
    "read_cells",
    "resolve_splits",
    "score",
    "target_info",
]
