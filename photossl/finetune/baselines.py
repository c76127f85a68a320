"""The classical baseline: ridge or kernel ridge regression (scikit-learn) on simple features of the permittivity.

Features of a cell (from raw ε, so any input file works): the (ε − 1)/19 image average-pooled to 8×8 (64 values), the
radially averaged power spectrum of ε − ε̄ on integer |G| shells 1..N/2 (its square root), and the scalars ε̄, std ε,
min ε, max ε, mean 1/ε, √ε̄ and the share of pixels at max ε (the filling). Features are standardised; targets are
centred. The penalty (and the RBF width) is chosen on the validation split by the target's primary metric, then the
test split is scored once. This is what a physicist could fit in a few lines; the networks should beat it.
"""

from __future__ import annotations

import math
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from photossl.errors import PhotosslError
from photossl.files import replace_atomically
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.targets import TargetInfo, score

CLASSICAL_FILE = "model.pkl"
POOLED_SIZE = 8
RIDGE_ALPHAS = tuple(10.0 ** e for e in np.arange(-4.0, 3.01, 0.5))
KERNEL_ALPHAS = tuple(10.0 ** e for e in np.arange(-5.0, 0.01, 1.0))
KERNEL_GAMMAS = (0.1, 0.3, 1.0, 3.0)  # × 1 / n_features (features are standardised)


def classical_features(eps: Any) -> np.ndarray:
    """Hand-made features of raw permittivity maps. Shape: (B, N, N) or (B, 1, N, N) -> (B, 64 + N//2 + 7) float64."""
    x = torch.as_tensor(np.asarray(eps.detach().cpu() if isinstance(eps, torch.Tensor) else eps), dtype=torch.float64)
    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3 or x.shape[-1] != x.shape[-2]:
        raise PhotosslError(f"permittivity maps must be (B, N, N) or (B, 1, N, N), got {tuple(x.shape)}")
    n = x.shape[-1]
    pooled = torch.nn.functional.adaptive_avg_pool2d(((x - 1.0) / 19.0)[:, None], POOLED_SIZE).flatten(1)
    mean = x.mean(dim=(1, 2))
    power = torch.fft.fft2(x - mean[:, None, None]).abs().pow(2) / n**4
    g = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
    shell = torch.sqrt(g[:, None] ** 2 + g[None, :] ** 2).round().long()  # (N, N) integer |G|
    radial = torch.stack([power[:, shell == s].sum(1) for s in range(1, n // 2 + 1)], dim=1).sqrt()
    top = x.amax(dim=(1, 2))
    scalars = torch.stack([
        mean, x.std(dim=(1, 2)), x.amin(dim=(1, 2)), top, (1.0 / x).mean(dim=(1, 2)), mean.sqrt(),
        (x >= top[:, None, None] - 1e-6).double().mean(dim=(1, 2)),
    ], dim=1)
    return torch.cat([pooled, radial, scalars], dim=1).numpy()


@dataclass
class ClassicalModel:
    """A fitted classical baseline: scaler, scikit-learn regressor, target mean, and what it predicts."""

    kind: str
    scaler: Any
    regressor: Any
    target_mean: np.ndarray
    target: dict
    hyperparameters: dict = field(default_factory=dict)
    method: str = "ridge"

    @property
    def target_info(self) -> TargetInfo:
        return TargetInfo.from_record(self.target)

    def predict(self, eps: Any) -> np.ndarray:
        """Predictions in target units. Shape: raw ε (B, N, N) or (B, 1, N, N) -> (B, *target shape)."""
        features = self.scaler.transform(classical_features(eps))
        flat = self.regressor.predict(features) + self.target_mean
        return flat.reshape(-1, *self.target["shape"])


def _regressor(kind: str, alpha: float, gamma: float | None):
    if kind == "ridge":
        from sklearn.linear_model import Ridge

        return Ridge(alpha=alpha, fit_intercept=False)
    from sklearn.kernel_ridge import KernelRidge

    return KernelRidge(alpha=alpha, kernel="rbf", gamma=gamma)


def _grid(kind: str, n_features: int) -> list[tuple[float, float | None]]:
    if kind == "ridge":
        return [(alpha, None) for alpha in RIDGE_ALPHAS]
    return [(alpha, g / n_features) for g in KERNEL_GAMMAS for alpha in KERNEL_ALPHAS]


def fit_classical(config: FinetuneConfig, data, out: Path, echo) -> dict[str, Any]:
    """Fit ``config.baseline`` on the budget's cells, select its hyper-parameters on validation, score the test set
    once, write ``out/model.pkl``; returns the metrics record (see :func:`photossl.finetune.finetune`)."""
    from sklearn.preprocessing import StandardScaler

    kind = config.baseline
    if kind not in ("ridge", "kernel-ridge"):
        raise PhotosslError(f"unknown baseline '{kind}' (allowed: ridge, kernel-ridge)")
    target = data.target
    train, val = data.train(), data.validation()
    if train.raw_eps is None:
        raise PhotosslError("the classical baseline needs raw permittivities (FinetuneData(keep_raw_eps=True))")
    scaler = StandardScaler().fit(classical_features(train.raw_eps))
    f_train, f_val = scaler.transform(classical_features(train.raw_eps)), scaler.transform(
        classical_features(val.raw_eps))
    y_train = train.targets.double().reshape(train.targets.shape[0], -1).numpy()
    y_mean = y_train.mean(0)
    primary = target.primary_metric
    best = (math.inf, None, None, None)
    history = []
    for alpha, gamma in _grid(kind, f_train.shape[1]):
        tick = time.perf_counter()
        regressor = _regressor(kind, alpha, gamma).fit(f_train, y_train - y_mean)
        metrics = score(target, regressor.predict(f_val) + y_mean, val.targets.double().numpy())
        history.append({"alpha": alpha, "gamma": gamma, f"val_{primary}": metrics[primary],
                        "fit_time_s": round(time.perf_counter() - tick, 4)})
        if metrics[primary] < best[0] or best[1] is None:
            best = (metrics[primary], regressor, {"alpha": alpha, "gamma": gamma}, metrics)
    from photossl.finetune.trainer import write_history

    write_history(out / "history.csv", history)
    method = config.label or kind
    model = ClassicalModel(kind, scaler, best[1], y_mean, target.as_record(), best[2], method)
    test = data.test()  # the only read of the test cells, after selection
    test_metrics = score(target, model.predict(test.raw_eps), test.targets.double().numpy())
    replace_atomically(out / CLASSICAL_FILE, lambda tmp: Path(tmp).write_bytes(pickle.dumps(model)))
    selected = 1 + next(i for i, h in enumerate(history) if h["alpha"] == best[2]["alpha"]
                        and h["gamma"] == best[2]["gamma"])
    echo(f"{method} budget {config.budget} seed {config.seed}: test {primary} {test_metrics[primary]:.4g} "
         f"(validation {best[0]:.4g}, alpha {best[2]['alpha']:.3g}"
         + (f", gamma {best[2]['gamma']:.3g})" if best[2]["gamma"] is not None else ")"))
    return {
        "method": method,
        "kind": "classical",
        "mode": "classical",
        "head": kind,
        "metric": primary,
        primary: test_metrics[primary],
        "test": test_metrics,
        "validation": best[3],
        "selected_epoch": selected,  # index of the selected hyper-parameter setting
        "epochs_run": len(history),
        "stopped_early": False,
        "hyperparameters": best[2],
        "n_features": int(f_train.shape[1]),
        "pretrained": None,
        "device": "cpu",
    }
