"""What a pretraining run reads out of its frozen encoder: the per-epoch monitor (a ridge probe of the DOS on the
photonics track, a kNN classifier on the vision track), the final linear probe (vision), and the line printed after
each epoch."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from photossl.training.config import PretrainConfig
from photossl.training.probes import encode, knn_accuracy, linear_probe, ridge_probe_error
from photossl.training.sources import TrainingData
from photossl.vision import normalize_images


def _vision_normaliser(config: PretrainConfig):
    return lambda images: normalize_images(images, config.dataset)


def monitor_metric(config: PretrainConfig, data: TrainingData, encoder: nn.Module, device: torch.device) -> dict:
    """The per-epoch read-out: ridge DOS error (photonics) or kNN top-1 accuracy (vision)."""
    if data.monitor_kind == "ridge":
        (x_train, y_train), (x_val, y_val, *offset) = data.monitor_train, data.monitor_test
        f_train, f_val = encode(encoder, x_train, device=device), encode(encoder, x_val, device=device)
        offset = offset[0].to(device) if offset else None
        return {"probe_rel_l1": ridge_probe_error(f_train, y_train.to(device), f_val, y_val.to(device), offset)}
    if data.monitor_kind == "knn":
        transform = _vision_normaliser(config)
        (x_bank, y_bank), (x_test, y_test) = data.monitor_train, data.monitor_test
        f_bank = encode(encoder, x_bank, device=device, transform=transform)
        f_test = encode(encoder, x_test, device=device, transform=transform)
        return {"knn_top1": knn_accuracy(f_bank, y_bank, f_test, y_test, config.knn_k, config.knn_temperature,
                                         data.n_classes)}
    return {}


def final_linear_probe(config: PretrainConfig, data: TrainingData, encoder: nn.Module, device: torch.device) -> dict:
    """Vision: a linear classifier on frozen features, once per ``linear_probe_seeds``."""
    transform = _vision_normaliser(config)
    (x_train, y_train), (x_test, y_test) = data.monitor_train, data.monitor_test
    f_train = encode(encoder, x_train, device=device, transform=transform)
    f_test = encode(encoder, x_test, device=device, transform=transform)
    result = linear_probe(f_train, y_train, f_test, y_test, config.linear_probe_seeds,
                          epochs=config.linear_probe_epochs)
    return result.as_dict()


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """The line printed after each epoch: loss, prediction accuracy, the online probe's read-out and the time."""
    parts = [f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}"]
    if row.get("predict_acc") is not None:
        parts.append(f"transformation-prediction accuracy {row['predict_acc']:.1%}")
    if row.get("probe_rel_l1") is not None:
        parts.append(f"ridge-probe DOS error {row['probe_rel_l1']:.2%}")
    if row.get("knn_top1") is not None:
        parts.append(f"kNN top-1 {row['knn_top1']:.1%}")
    if row.get("epoch_time_s") is not None:
        parts.append(f"{row['epoch_time_s']:.1f} s")
    return ", ".join(parts)
