"""Regression errors for fine-tuned surrogates: the SIB-CL DOS error, MAE and relative errors for gaps and bands.

Every function takes torch tensors or numpy arrays (anything ``numpy.asarray`` accepts), computes with the input's
library on the input's device, and returns a Python float for ``reduction="mean"``, or per-sample values of the
input's type for ``reduction="none"``. Samples are indexed by every leading dimension; the per-sample sums run over
the trailing dimensions named in each docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from photossl.errors import PhotosslError

REDUCTIONS = ("mean", "none")

# The SIB-CL evaluation window: bins 100..399 of the 500-point DOS on linspace(0, 1.2, 500).
DOS_START = 100
DOS_STOP = 400


def _pair(pred: Any, true: Any) -> tuple[Any, Any]:
    """Both as tensors (on ``pred``'s device) if either is one, else both as float64 numpy arrays."""
    if isinstance(pred, torch.Tensor) or isinstance(true, torch.Tensor):
        ref = pred if isinstance(pred, torch.Tensor) else true
        dtype = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
        pred = torch.as_tensor(pred, device=ref.device).to(dtype)
        true = torch.as_tensor(true, device=ref.device).to(dtype)
    else:
        pred = np.asarray(pred, dtype=np.float64)
        true = np.asarray(true, dtype=np.float64)
    if tuple(pred.shape) != tuple(true.shape):
        raise PhotosslError(f"pred and true must have the same shape, got {tuple(pred.shape)} and {tuple(true.shape)}")
    return pred, true


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise PhotosslError(f"reduction must be one of {', '.join(REDUCTIONS)}; got {reduction!r}")


def _reduce(per_sample: Any, reduction: str) -> Any:
    if reduction == "none":
        return per_sample
    return float(per_sample.mean())


def _sum_trailing(x: Any, n_dims: int) -> Any:
    if n_dims == 0:
        return x
    dims = tuple(range(-n_dims, 0))
    return x.sum(dim=dims) if isinstance(x, torch.Tensor) else x.sum(axis=dims)


def dos_relative_l1(
    pred: Any, true: Any, start: int = DOS_START, stop: int = DOS_STOP, reduction: str = "mean"
) -> Any:
    """SIB-CL's DOS error: per sample Σ_{j=start}^{stop−1} |ŷ_j − y_j| / Σ_{j=start}^{stop−1} |y_j|,
    then averaged.

    Pass the DOS itself (for a model trained on the empty-lattice difference, add the empty-lattice DOS back to
    both prediction and truth first, as the SIB-CL evaluation does); the first ``start`` bins are left out because
    every cell's DOS is nearly the same there.

    Shape: pred, true (..., F) with F >= stop -> float ("mean") or (...) ("none").
    """
    _check_reduction(reduction)
    pred, true = _pair(pred, true)
    if pred.ndim < 1:
        raise PhotosslError("pred and true need a trailing frequency dimension (..., F)")
    n_freq = pred.shape[-1]
    if isinstance(start, bool) or isinstance(stop, bool) or not (0 <= start < stop <= n_freq):
        raise PhotosslError(f"need 0 <= start < stop <= F = {n_freq}; got start={start!r}, stop={stop!r}")
    pred, true = pred[..., start:stop], true[..., start:stop]
    per_sample = abs(pred - true).sum(-1) / abs(true).sum(-1)
    return _reduce(per_sample, reduction)


def mean_absolute_error(pred: Any, true: Any, sample_dims: int = 1, reduction: str = "mean") -> Any:
    """Mean |ŷ − y|. Each sample averages its trailing ``ndim − sample_dims`` dimensions; "mean" averages all.

    Shape: pred, true (S..., T...) with ``sample_dims`` leading dims S -> float ("mean") or (S...) ("none").
    E.g. gaps (B,) with sample_dims=1; bands (B, K, n_bands) with sample_dims=1.
    """
    _check_reduction(reduction)
    pred, true = _pair(pred, true)
    n_trailing = _trailing_dims(pred, sample_dims)
    err = abs(pred - true)
    count = int(np.prod(pred.shape[pred.ndim - n_trailing :])) if n_trailing else 1
    return _reduce(_sum_trailing(err, n_trailing) / count, reduction)


def relative_l1(pred: Any, true: Any, sample_dims: int = 1, reduction: str = "mean") -> Any:
    """Per sample Σ|ŷ − y| / Σ|y| over the trailing dimensions (for scalars per sample: |ŷ − y| / |y|),
    then averaged.

    A sample whose target is all zeros gives inf (or nan); use :func:`pooled_relative_error` for targets that can
    vanish, such as band gaps of cells without a gap.

    Shape: pred, true (S..., T...) -> float ("mean") or (S...) ("none").
    """
    _check_reduction(reduction)
    pred, true = _pair(pred, true)
    n_trailing = _trailing_dims(pred, sample_dims)
    per_sample = _sum_trailing(abs(pred - true), n_trailing) / _sum_trailing(abs(true), n_trailing)
    return _reduce(per_sample, reduction)


def pooled_relative_error(pred: Any, true: Any) -> float:
    """Σ|ŷ − y| / Σ|y| over every element: a relative error that stays finite when some targets are 0
    (closed gaps).

    Shape: pred, true (any, same) -> float.
    """
    pred, true = _pair(pred, true)
    return float(abs(pred - true).sum() / abs(true).sum())


def _trailing_dims(x: Any, sample_dims: int) -> int:
    if isinstance(sample_dims, bool) or not isinstance(sample_dims, int) or not 1 <= sample_dims <= x.ndim:
        raise PhotosslError(
            f"sample_dims must be an integer in 1..{x.ndim} for shape {tuple(x.shape)}, got {sample_dims!r}"
        )
    return x.ndim - sample_dims
