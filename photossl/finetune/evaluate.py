"""Predictions of a fine-tuned network in target units, and their scores on a split."""

from __future__ import annotations

import torch
from torch import nn

from photossl.finetune.data import Part
from photossl.finetune.scaling import TargetScaler
from photossl.finetune.targets import TargetInfo, score


@torch.inference_mode()  # a little cheaper than no_grad; the predictions never enter autograd
def predict_images(model: nn.Module, scaler: TargetScaler, images: torch.Tensor, device: torch.device,
                   batch_size: int = 512) -> torch.Tensor:
    """Predictions in target units (float64, CPU). Shape: (B, C, N, N) -> (B, size)."""
    was_training = model.training
    model.eval()
    try:
        parts = [scaler.inverse(model(images[i: i + batch_size].to(device)).float()).double().cpu()
                 for i in range(0, images.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, scaler.mean.numel(), dtype=torch.float64)


def evaluate(model: nn.Module, scaler: TargetScaler, part: Part, target: TargetInfo, device: torch.device,
             batch_size: int = 512) -> dict[str, float]:
    pred = predict_images(model, scaler, part.images, device, batch_size)
    return score(target, pred.numpy(), part.targets.double().numpy())
