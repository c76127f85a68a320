"""The classical baseline: ridge or kernel ridge regression (scikit-learn) on simple features of the permittivity.

Features of a cell (from raw ε, so any input file works): the (ε − 1)/19 image average-pooled to 8×8 (64 values),
the radially averaged power spectrum of ε − ε̄ on integer |G| shells 1..N/2 (its square root), and the scalars
ε̄, std ε, min ε, max ε, mean 1/ε, √ε̄ and the share of pixels at max ε (the filling). Features are
standardised; targets are centred. The penalty (and the RBF width) is chosen on the validation split by the target's
primary metric, then the test split is scored once. This is what a physicist could fit in a few lines; the networks
should beat it.

The fitted model is stored as arrays in ``model.npz`` and predicts in numpy, so loading it never unpickles anything.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from photossl.errors import PhotosslError
from photossl.files import replace_atomically
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.outputs import write_history
from photossl.finetune.targets import TargetInfo, score

CLASSICAL_FILE = "model.npz"
CLASSICAL_FORMAT = "photossl-classical-baseline"
# Written by earlier versions as a pickle; refused, since unpickling a file can run any code in it.
LEGACY_CLASSICAL_FILE = "model.pkl"
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
    """A fitted classical baseline as plain arrays, so its file (``model.npz``) loads without unpickling anything.

    Features are standardised with ``feature_mean`` / ``feature_scale`` (F,); ridge predicts ``z @ coef.T`` with
    ``coef`` (T, F); kernel ridge (RBF) predicts ``exp(-gamma |z - z_i|²) @ dual_coef`` over its standardised
    training features ``train_features`` (n_train, F) and ``dual_coef`` (n_train, T). ``target_mean`` (T,) is added.
    """

    kind: str
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    target_mean: np.ndarray
    target: dict
    hyperparameters: dict = field(default_factory=dict)
    method: str = "ridge"
    coef: np.ndarray | None = None
    dual_coef: np.ndarray | None = None
    train_features: np.ndarray | None = None
    gamma: float | None = None

    @classmethod
    def from_sklearn(cls, kind: str, scaler, regressor, target_mean: np.ndarray, target: dict,
                     hyperparameters: dict, method: str) -> ClassicalModel:
        """The arrays of a fitted ``StandardScaler`` and ``Ridge(fit_intercept=False)`` or ``KernelRidge`` (RBF)."""
        common = dict(feature_mean=np.asarray(scaler.mean_, np.float64),
                      feature_scale=np.asarray(scaler.scale_, np.float64),
                      target_mean=np.asarray(target_mean, np.float64), target=target,
                      hyperparameters=dict(hyperparameters), method=method)
        if kind == "ridge":
            return cls(kind, coef=np.atleast_2d(np.asarray(regressor.coef_, np.float64)), **common)
        dual = np.asarray(regressor.dual_coef_, np.float64)
        return cls(kind, dual_coef=dual.reshape(dual.shape[0], -1), gamma=float(regressor.gamma),
                   train_features=np.asarray(regressor.X_fit_, np.float64), **common)

    @property
    def target_info(self) -> TargetInfo:
        return TargetInfo.from_record(self.target)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Flat predictions (B, T) from unstandardised features (B, F)."""
        z = (np.asarray(features, np.float64) - self.feature_mean) / self.feature_scale
        if self.kind == "ridge":
            return z @ self.coef.T + self.target_mean
        x = self.train_features  # squared distances as scikit-learn computes them, clipped at 0 like it does
        distance = (z * z).sum(1)[:, None] - 2.0 * z @ x.T + (x * x).sum(1)[None, :]
        return np.exp(-self.gamma * np.maximum(distance, 0.0)) @ self.dual_coef + self.target_mean

    def predict(self, eps: Any) -> np.ndarray:
        """Predictions in target units. Shape: raw ε (B, N, N) or (B, 1, N, N) -> (B, *target shape)."""
        return self.predict_features(classical_features(eps)).reshape(-1, *self.target["shape"])

    def save(self, path: str | Path) -> None:
        """Write ``path`` (.npz) atomically: the arrays, and the rest as one JSON string."""
        meta = {"format": CLASSICAL_FORMAT, "kind": self.kind, "method": self.method, "target": self.target,
                "hyperparameters": self.hyperparameters, "gamma": self.gamma}
        arrays = {"meta": np.array(json.dumps(meta)), "feature_mean": self.feature_mean,
                  "feature_scale": self.feature_scale, "target_mean": self.target_mean}
        arrays.update({name: getattr(self, name) for name in _WEIGHTS[self.kind]})

        def write(tmp: str) -> None:
            with open(tmp, "wb") as handle:  # a file object: np.savez would add '.npz' to a name
                np.savez(handle, **arrays)

        replace_atomically(path, write)

    @classmethod
    def load(cls, path: str | Path) -> ClassicalModel:
        """Read a file written by :meth:`save` (``np.load(allow_pickle=False)``: nothing in it can run code)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            meta = json.loads(str(arrays.pop("meta")))
            kind = meta["kind"]
            missing = [name for name in ("feature_mean", "feature_scale", "target_mean", *_WEIGHTS[kind])
                       if name not in arrays]
            if meta.get("format") != CLASSICAL_FORMAT or missing:
                raise KeyError(missing[0] if missing else "format")
            return cls(kind, arrays["feature_mean"], arrays["feature_scale"], arrays["target_mean"], meta["target"],
                       meta["hyperparameters"], meta["method"], gamma=meta["gamma"],
                       **{name: arrays[name] for name in _WEIGHTS[kind]})
        except (OSError, ValueError, KeyError, TypeError) as err:
            first_line = (str(err).splitlines() or [""])[0][:200]
            raise PhotosslError(f"{path} is not a readable photossl classical baseline ({type(err).__name__}: "
                                f"{first_line}); refit it: {refit_command(path.parent)}") from None


def refit_command(folder: Path) -> str:
    """The ``photossl finetune`` command that fits the baseline of run folder ``folder`` again."""
    import yaml

    try:
        values = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        values = None
    if not isinstance(values, dict):
        return f"photossl finetune --data DATA --baseline ridge --budget N --out {folder} --overwrite"
    kind = values.get("baseline") if values.get("baseline") in ("ridge", "kernel-ridge") else "ridge"
    return f"photossl finetune --config {folder / 'config.yaml'} --baseline {kind} --out {folder} --overwrite"


_WEIGHTS = {"ridge": ("coef",), "kernel-ridge": ("dual_coef", "train_features")}


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
    once, write ``out/model.npz``; returns the metrics record (see :func:`photossl.finetune.finetune`)."""
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
    write_history(out / "history.csv", history)
    method = config.label or kind
    model = ClassicalModel.from_sklearn(kind, scaler, best[1], y_mean, target.as_record(), best[2], method)
    test = data.test()  # the only read of the test cells, after selection
    test_metrics = score(target, model.predict(test.raw_eps), test.targets.double().numpy())
    model.save(out / CLASSICAL_FILE)
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
