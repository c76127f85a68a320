"""Hyper-parameter checks shared by the model constructors (errors name the offending argument)."""

from __future__ import annotations

from collections.abc import Sequence

from photossl.errors import PhotosslError


def positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PhotosslError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_ints(name: str, values: Sequence[object], *, min_len: int = 0) -> tuple[int, ...]:
    """Return ``values`` as a tuple of positive ints with at least ``min_len`` entries, else raise naming ``name``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise PhotosslError(f"{name} must be a sequence of positive integers, got {values!r}")
    if len(values) < min_len:
        raise PhotosslError(f"{name} needs at least {min_len} entries, got {list(values)}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise PhotosslError(f"{name} must contain positive integers only, got {list(values)}")
    return tuple(values)  # type: ignore[arg-type]
