"""Self-supervised losses: each a pure function plus a thin ``nn.Module``.

Single-term losses return a scalar tensor; multi-term losses return a NamedTuple whose first field, ``loss``, is
the quantity to differentiate and whose other fields are the unweighted terms for logging.
"""

from photossl.losses.barlow_twins_loss import BarlowTwinsLoss, barlow_twins_loss
from photossl.losses.byol_loss import BYOLLoss, byol_loss
from photossl.losses.care_loss import (
    CAREEquivarianceLoss,
    care_equivariance_loss,
    minkowski_form,
    paired_care_equivariance_loss,
)
from photossl.losses.care_objective import CARELoss, CAREOutput, care_loss
from photossl.losses.coset_prediction_loss import CosetPredictionLoss, coset_prediction_loss
from photossl.losses.known_group_care_loss import KnownGroupCARELoss, known_group_care_loss
from photossl.losses.moco_loss import MoCoLoss, moco_loss
from photossl.losses.ntxent_loss import NTXentLoss, nt_xent_loss
from photossl.losses.transform_prediction_loss import (
    TransformPredictionLoss,
    TransformPredictionOutput,
    transform_prediction_loss,
)
from photossl.losses.vicreg_loss import VICRegLoss, VICRegOutput, vicreg_loss

__all__ = [
    "BYOLLoss",
    "BarlowTwinsLoss",
    "CAREEquivarianceLoss",
    "CARELoss",
    "CAREOutput",
    "CosetPredictionLoss",
    "KnownGroupCARELoss",
    "MoCoLoss",
    "NTXentLoss",
    "TransformPredictionLoss",
    "TransformPredictionOutput",
    "VICRegLoss",
    "VICRegOutput",
    "barlow_twins_loss",
    "byol_loss",
    "care_equivariance_loss",
    "care_loss",
    "coset_prediction_loss",
    "known_group_care_loss",
    "minkowski_form",
    "moco_loss",
    "nt_xent_loss",
    "paired_care_equivariance_loss",
    "transform_prediction_loss",
    "vicreg_loss",
]
