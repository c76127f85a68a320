"""Argument checks shared by the losses: hyper-parameters raise PhotosslError (a ValueError) naming them."""

from __future__ import annotations

import math
import numbers

import torch

from photossl.errors import PhotosslError


def check_positive(name: str, value: float) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise PhotosslError(f"{name} must be a finite number > 0, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise PhotosslError(f"{name} must be a finite number >= 0, got {value!r}")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise PhotosslError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_pair(z1: torch.Tensor, z2: torch.Tensor, names: tuple[str, str] = ("z1", "z2"), min_rows: int = 1) -> None:
    """Both inputs are (B, D) with equal shapes and at least ``min_rows`` rows."""
    for name, z in zip(names, (z1, z2)):
        if z.dim() != 2:
            raise ValueError(f"{name} must have shape (batch_size, dim), got {tuple(z.shape)}")
    if z1.shape != z2.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < min_rows:
        raise ValueError(f"{names[0]} needs at least {min_rows} rows, got {z1.shape[0]}")
