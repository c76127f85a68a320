"""Pretraining methods, one module per part: the bases :mod:`~.simclr`, :mod:`~.vicreg`, :mod:`~.barlow`,
:mod:`~.byol` and :mod:`~.moco` (these two sharing :mod:`~.target`), and the modifiers :mod:`~.essl` (absolute and
relative), :mod:`~.care` and :mod:`~.gcare`. Each declares its views, heads, loss terms, log columns, batch rule and
warnings (:mod:`~.part`); :mod:`~.combine` joins a base with its modifiers, :mod:`~.model` is the network that runs
them.
"""

from photossl.training.methods.care import hyperboloid_lift
from photossl.training.methods.combine import Method, method_of
from photossl.training.methods.group import predicted_group
from photossl.training.methods.model import (
    Objective,
    PretrainModel,
    build_encoder_from_config,
    build_model,
    objective_from_config,
)
from photossl.training.methods.part import Part, Pass

__all__ = [
    "Method",
    "Objective",
    "Part",
    "Pass",
    "PretrainModel",
    "build_encoder_from_config",
    "build_model",
    "hyperboloid_lift",
    "method_of",
    "objective_from_config",
    "predicted_group",
]
