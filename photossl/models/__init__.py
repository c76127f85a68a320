"""Encoders (periodic-aware CNNs, CIFAR ResNet-18) and MLP heads for self-supervised pretraining and fine-tuning."""

from photossl.models.digits_cnn import DigitsCNN
from photossl.models.essl_encoder import ESSLEncoder
from photossl.models.factory import ENCODERS, build_encoder
from photossl.models.heads import MLP, PredictionHead, ProjectionHead, RegressionHead
from photossl.models.periodic_conv import PeriodicConv2d, periodic_pad, same_conv2d
from photossl.models.resnet import BasicBlock, CifarResNet, cifar_resnet18
from photossl.models.small_encoder import SmallEncoder

__all__ = [
    "ENCODERS",
    "MLP",
    "BasicBlock",
    "CifarResNet",
    "DigitsCNN",
    "ESSLEncoder",
    "PeriodicConv2d",
    "PredictionHead",
    "ProjectionHead",
    "RegressionHead",
    "SmallEncoder",
    "build_encoder",
    "cifar_resnet18",
    "periodic_pad",
    "same_conv2d",
]
