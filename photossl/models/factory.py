"""Encoders by name, for configs and the CLI."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from photossl.errors import PhotosslError
from photossl.models.digits_cnn import DigitsCNN
from photossl.models.essl_encoder import ESSLEncoder
from photossl.models.p4m_encoder import P4MEncoder
from photossl.models.resnet import cifar_resnet18
from photossl.models.small_encoder import SmallEncoder

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "essl": ESSLEncoder,
    "small": SmallEncoder,
    "resnet18": cifar_resnet18,
    "digits": DigitsCNN,
    "p4m": P4MEncoder,
}


def build_encoder(name: str, *, exact_symmetry: bool = False, **kwargs) -> nn.Module:
    """Build the encoder registered as ``name`` ('essl', 'small', 'p4m', 'resnet18', 'digits') with ``kwargs``.

    Every encoder has ``.feature_dim`` and maps ``(B, C, H, W) -> (B, feature_dim)``. An unknown name or
    keyword raises :class:`~photossl.errors.PhotosslError` (a ``ValueError``) listing the valid choices.
    ``exact_symmetry=True`` wraps it in :class:`~photossl.models.exact_symmetry.ExactSymmetryEncoder` (exactly
    invariant to D4 and to every integer roll; 'small' and 'essl' with circular padding only). 'p4m'
    (:class:`~photossl.models.p4m_encoder.P4MEncoder`) is exactly symmetric by construction and is never wrapped.
    """
    if name not in ENCODERS:
        raise PhotosslError(f"unknown encoder {name!r}; choose one of: {', '.join(sorted(ENCODERS))}")
    builder = ENCODERS[name]
    signature = inspect.signature(builder)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        accepted = ", ".join(signature.parameters)
        raise PhotosslError(f"bad arguments for encoder {name!r} ({err}); it accepts: {accepted}") from None
    encoder = builder(**kwargs)
    if exact_symmetry and not is_exactly_symmetric(encoder):
        if name not in ("small", "essl") or not kwargs.get("circular_padding", True):
            raise PhotosslError(
                f"exact_symmetry needs a periodic encoder ('small' or 'essl' with circular padding), got {name!r}"
                + ("" if name not in ("small", "essl") else " with zero padding")
            )
        from photossl.models.exact_symmetry import ExactSymmetryEncoder

        encoder = ExactSymmetryEncoder(encoder)
    return encoder


def is_exactly_symmetric(encoder: nn.Module) -> bool:
    """Whether ``encoder`` is exactly invariant to D4 and every integer roll, with ``orbit_features`` for
    equivariant heads: an :class:`~photossl.models.exact_symmetry.ExactSymmetryEncoder` or a 'p4m' encoder."""
    return bool(getattr(encoder, "exactly_symmetric", False))
