"""Encoders (periodic-aware CNNs, CIFAR ResNet-18) and MLP heads for self-supervised pretraining and fine-tuning."""

from photossl.models.digits_cnn import DigitsCNN
from photossl.models.essl_encoder import ESSLEncoder
from photossl.models.exact_symmetry import (
    ExactSymmetryEncoder,
    PolyphaseMaxPool2d,
    make_shift_invariant,
    orbit_average,
)
from photossl.models.factory import ENCODERS, build_encoder, is_exactly_symmetric
from photossl.models.heads import MLP, PredictionHead, ProjectionHead, RegressionHead
from photossl.models.p4m_encoder import GroupConv2d, LiftingConv2d, P4MEncoder
from photossl.models.periodic_conv import (
    PeriodicConv2d,
    aps_downsample,
    aps_phase,
    periodic_pad,
    same_conv2d,
)
from photossl.models.resnet import BasicBlock, CifarResNet, cifar_resnet18
from photossl.models.small_encoder import SmallEncoder
from photossl.models.spectral_conv import spectral_periodic_conv2d

__all__ = [
    "ENCODERS",
    "MLP",
    "P4MEncoder",
    "BasicBlock",
    "CifarResNet",
    "DigitsCNN",
    "ESSLEncoder",
    "ExactSymmetryEncoder",
    "GroupConv2d",
    "LiftingConv2d",
    "PeriodicConv2d",
    "PolyphaseMaxPool2d",
    "PredictionHead",
    "ProjectionHead",
    "RegressionHead",
    "SmallEncoder",
    "aps_downsample",
    "aps_phase",
    "build_encoder",
    "is_exactly_symmetric",
    "cifar_resnet18",
    "make_shift_invariant",
    "orbit_average",
    "periodic_pad",
    "same_conv2d",
    "spectral_periodic_conv2d",
]
