"""Cheap read-outs of frozen features: a ridge probe of the DOS (photonics), a kNN monitor and a linear probe
(vision). All run on the features' device, in closed form or with a few hundred optimiser steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from photossl.errors import PhotosslError


@torch.no_grad()
def encode(
    encoder: nn.Module,
    inputs: torch.Tensor,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Encoder features of ``inputs`` (N, C, H, W) in eval mode, in batches, as float32 (N, D) on ``device``
    (default: the encoder's). The encoder's train/eval mode is restored afterwards."""
    if device is None:
        device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    try:
        parts = []
        for start in range(0, inputs.shape[0], batch_size):
            x = inputs[start : start + batch_size].to(device, non_blocking=True)
            if transform is not None:
                x = transform(x)
            parts.append(encoder(x).float())
        return torch.cat(parts) if parts else torch.empty(0, 0, device=device)
    finally:
        encoder.train(was_training)


@dataclass(frozen=True)
class RidgeProbe:
    """A fitted ridge map from standardised features to targets (float64)."""

    mean: torch.Tensor
    scale: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    alpha: float

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, K)."""
        x = (features.to(self.mean) - self.mean) / self.scale
        return x @ self.weight + self.bias


def fit_ridge(features: torch.Tensor, targets: torch.Tensor, alphas: Sequence[float] | None = None) -> RidgeProbe:
    """Ridge regression of targets (N, K) on features (N, D), in closed form through one SVD.

    Features are standardised and targets centred (an unpenalised intercept). The penalty is chosen among
    ``alphas`` (default: 13 values from 1e-6 to 1 times the largest squared singular value) by the leave-one-out
    error of the training cells, which the hat matrix gives without refitting — the validation cells stay unseen.
    """
    x = features.double()
    y = targets.double().reshape(targets.shape[0], -1)
    if x.shape[0] < 2:
        raise PhotosslError(f"ridge probe needs at least 2 training samples, got {x.shape[0]}")
    mean = x.mean(0)
    scale = x.std(0).clamp_min(1e-12)
    x = (x - mean) / scale
    y_mean = y.mean(0)
    yc = y - y_mean
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    uty = u.T @ yc
    if alphas is None:
        top = float(s.max() ** 2) if s.numel() else 1.0
        alphas = [top * 10.0 ** e for e in torch.linspace(-6, 0, 13).tolist()]
    best = None
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink[:, None] * uty)
        hat = (u**2 @ shrink).clamp_max(1 - 1e-9) + 1.0 / x.shape[0]
        loo = ((yc - fitted) / (1 - hat[:, None])).pow(2).mean()
        if best is None or loo < best[0]:
            best = (loo, alpha)
    alpha = best[1]
    weight = vh.T @ ((s / (s**2 + alpha))[:, None] * uty)
    return RidgeProbe(mean, scale, weight, y_mean, float(alpha))


def ridge_probe_error(
    train_features: torch.Tensor,
    train_targets: torch.Tensor,
    val_features: torch.Tensor,
    val_targets: torch.Tensor,
    val_offset: torch.Tensor | None = None,
) -> float:
    """Mean relative L1 on the validation cells of a ridge probe fitted on the training cells.

    ``val_offset`` (same shape as ``val_targets``) is added to prediction and truth before scoring: for the
    ``dos_eldiff`` target pass ``dos - dos_eldiff`` (the empty-lattice DOS), so that the score is SIB-CL's DOS
    error (:func:`photossl.evaluation.metrics.dos_relative_l1`, bins 100..399). Targets with fewer than 400 bins
    are scored over all their bins.
    """
    from photossl.evaluation.metrics import DOS_STOP, dos_relative_l1, relative_l1

    probe = fit_ridge(train_features, train_targets)
    prediction = probe.predict(val_features)
    truth = val_targets.to(prediction).reshape(prediction.shape)
    if val_offset is not None:
        offset = val_offset.to(prediction).reshape(prediction.shape)
        prediction, truth = prediction + offset, truth + offset
    if truth.shape[1] >= DOS_STOP:
        return dos_relative_l1(prediction, truth)
    return relative_l1(prediction, truth)


@torch.no_grad()
def knn_accuracy(
    bank_features: torch.Tensor,
    bank_labels: torch.Tensor,
    query_features: torch.Tensor,
    query_labels: torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    n_classes: int | None = None,
    chunk: int = 1024,
) -> float:
    """Top-1 accuracy of the weighted kNN classifier of Wu et al. (2018) used as SimCLR / E-SSL's monitor.

    Cosine similarities to the ``k`` nearest bank features vote with weight ``exp(sim / temperature)``.
    Shape: bank (M, D), bank_labels (M,), query (N, D), query_labels (N,).
    """
    if bank_features.shape[0] == 0 or query_features.shape[0] == 0:
        raise PhotosslError("kNN needs a non-empty bank and query set")
    n_classes = int(n_classes or int(bank_labels.max()) + 1)
    k = min(k, bank_features.shape[0])
    bank = F.normalize(bank_features.float(), dim=1)
    bank_labels = bank_labels.to(bank.device)
    correct = 0
    for start in range(0, query_features.shape[0], chunk):
        q = F.normalize(query_features[start : start + chunk].float().to(bank.device), dim=1)
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(q.shape[0], n_classes, device=bank.device)
        votes.scatter_add_(1, bank_labels[idx], torch.exp(sim / temperature))
        correct += int((votes.argmax(1) == query_labels[start : start + chunk].to(bank.device)).sum())
    return correct / query_features.shape[0]


@dataclass(frozen=True)
class LinearProbeResult:
    """Test accuracy of a linear classifier on frozen features, one per seed, with their mean and std."""

    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(torch.tensor(self.accuracies).mean())

    @property
    def std(self) -> float:
        return float(torch.tensor(self.accuracies).std()) if len(self.accuracies) > 1 else 0.0

    def as_dict(self) -> dict:
        return {"seeds": list(self.seeds), "accuracies": list(self.accuracies), "mean": self.mean, "std": self.std}


def linear_probe(
    features_train: torch.Tensor,
    y_train: torch.Tensor,
    features_test: torch.Tensor,
    y_test: torch.Tensor,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    epochs: int = 100,
    batch_size: int = 256,
    lr: float = 3e-2,
    weight_decay: float = 1e-4,
) -> LinearProbeResult:
    """Multinomial logistic regression on standardised frozen features, trained once per seed.

    Each seed fixes the initialisation and the minibatch order of Adam (lr with a cosine decay over ``epochs``).
    Shape: features (N, D) / (M, D), labels (N,) / (M,) integer class indices.
    """
    if len(seeds) == 0:
        raise PhotosslError("linear_probe needs at least one seed")
    device = features_train.device
    mean = features_train.float().mean(0)
    std = features_train.float().std(0).clamp_min(1e-6)
    x_train = (features_train.float() - mean) / std
    x_test = (features_test.float().to(device) - mean) / std
    y_train, y_test = y_train.to(device).long(), y_test.to(device).long()
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    n = x_train.shape[0]
    steps_per_epoch = max(1, -(-n // batch_size))
    accuracies = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(int(seed))
        classifier = nn.Linear(x_train.shape[1], n_classes).to(device)
        with torch.no_grad():
            bound = 1.0 / x_train.shape[1] ** 0.5
            classifier.weight.copy_(torch.empty_like(classifier.weight, device="cpu").uniform_(
                -bound, bound, generator=generator))
            classifier.bias.zero_()
        optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator).to(device)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                loss = F.cross_entropy(classifier(x_train[idx]), y_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
        with torch.no_grad():
            accuracies.append(float((classifier(x_test).argmax(1) == y_test).float().mean()))
    return LinearProbeResult(tuple(int(s) for s in seeds), tuple(accuracies))
