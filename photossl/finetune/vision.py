"""Fine-tune on a vision dataset's label budget: a classifier (encoder and linear head) trained with cross-entropy
and selected on the validation images, or the shared linear probe of frozen features; the test images scored once.

Outputs in FT, in the layout of :func:`photossl.finetune.finetune`: ``metrics.json`` (metric ``top1_error``, the test
top-1 error of the selected model, and ``top1_acc``; validation metrics, selected epoch, wall time, seeds, budget,
method, versions), ``indices.json``, ``config.yaml``, and in mode 'full' ``history.csv`` (one row per epoch) and
``model.pt`` (encoder and head, read back by :func:`load_vision_classifier`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.files import atomic_torch_save, load_torch_file, write_json_record, write_yaml_record
from photossl.finetune.outputs import METRICS_FILE, MODEL_FILE, prepare_output, refuse_finished, write_history
from photossl.finetune.vision_config import METRIC, VisionFinetuneConfig
from photossl.finetune.vision_data import VisionFinetuneData, VisionImages
from photossl.provenance import software_versions
from photossl.runtime import seeded, select_device, torch_generator, torch_threads

MODEL_FORMAT = "photossl-vision-classifier"
_INIT_STREAM = 0xC1A5
_ORDER_STREAM = 0x0DE6
_AUGMENT_STREAM = 0xA07


def scores(accuracy: float) -> dict[str, float]:
    """The metrics of a top-1 ``accuracy``: the top-1 error (the primary metric) and the accuracy itself."""
    return {METRIC: 1.0 - accuracy, "top1_acc": accuracy}


# ------------------------------------------------------------------------------------------------------ the encoder
def fresh_encoder(config: VisionFinetuneConfig, in_channels: int, *seed: int) -> tuple[nn.Module, str]:
    """(encoder initialised from the seed words ``seed``, its registered name): ``config.encoder``, or the one
    pretraining builds for the dataset, so that a network from scratch is the network the pretrained methods start
    from."""
    from photossl.training import build_encoder_from_config, make_config, resolve_defaults

    values = {"track": "vision", "dataset": config.dataset}
    if config.encoder is not None:
        values["encoder"] = config.encoder
    fresh = resolve_defaults(make_config(values))
    with seeded(*seed):  # without touching the caller's random state
        return build_encoder_from_config(fresh, in_channels), fresh.encoder


def _encoder(config: VisionFinetuneConfig, in_channels: int) -> tuple[nn.Module, str, dict[str, Any] | None]:
    """(encoder, its registered name, what the record says about the pretraining run or None)."""
    from photossl.training import load_pretrained

    if config.pretrained is None:
        encoder, name = fresh_encoder(config, in_channels, _INIT_STREAM, config.seed)
        return encoder, name, None
    encoder, pretrain_config = load_pretrained(config.pretrained)
    if pretrain_config.track != "vision" or pretrain_config.dataset != config.dataset:
        where = pretrain_config.dataset if pretrain_config.track == "vision" else "photonic cells"
        raise PhotosslError(f"{config.pretrained} was pretrained on {where}, not on {config.dataset}")
    record = {"run": str(config.pretrained), "method": pretrain_config.method, "epochs": pretrain_config.epochs,
              "encoder": pretrain_config.encoder, "seed": pretrain_config.seed}
    return encoder, pretrain_config.encoder, record


def load_vision_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(encoder + head as ``nn.Sequential`` in eval mode, the payload's record) of a fine-tuning folder or its
    ``model.pt``; inputs are images normalised with :func:`photossl.vision.normalize_images`."""
    from photossl.models import build_encoder

    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    if not file.exists():
        raise PhotosslError(f"no vision classifier at {path}")
    remedy = "rerun the fine-tuning to make it again"
    payload = load_torch_file(file, "photossl vision classifier", remedy, map_location, MODEL_FORMAT)
    encoder = build_encoder(payload["encoder"], in_channels=int(payload["in_channels"]))
    model = nn.Sequential(encoder, nn.Linear(encoder.feature_dim, int(payload["n_classes"])))
    model.load_state_dict(payload["state"])
    return model.to(map_location).eval(), {k: v for k, v in payload.items() if k != "state"}


# ------------------------------------------------------------------------------------------------------- evaluation
@torch.inference_mode()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, transform, device: torch.device,
             batch_size: int) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on images (N, C, H, W) with labels (N,)."""
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for start in range(0, images.shape[0], batch_size):
            logits = model(transform(images[start: start + batch_size].to(device)))
            correct += int((logits.argmax(1).cpu() == labels[start: start + batch_size]).sum())
        return correct / images.shape[0]
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------------------------------- the run
def finetune_vision(config: VisionFinetuneConfig, out: str | Path, overwrite: bool = False,
                    echo: Callable[[str], None] | None = None, dataset: VisionImages | None = None) -> dict[str, Any]:
    """Fine-tune (or probe) as ``config`` says, write FT = ``out``, return metrics.json's record.

    ``dataset``: the images already loaded for this config (:meth:`VisionImages.load`), to share between runs.
    Raises PhotosslError for bad input (a budget larger than the labelled pool, an encoder pretrained elsewhere, a
    finished run in ``out`` without ``overwrite``); nothing in ``out`` changes before the data are read.
    """
    echo = echo or (lambda message: None)
    config.validate()
    started = time.perf_counter()
    refuse_finished(Path(out), overwrite)
    data = VisionFinetuneData(config, dataset)
    out = prepare_output(out, overwrite)
    with torch_threads(config.threads):
        device = select_device(config.device)
        if config.mode == "frozen":
            record = _probe(config, data, device)
        else:
            record = _train(config, data, out, device)
        record.update(
            budget=config.budget, seed=config.seed, split_seed=config.split_seed, dataset=config.dataset,
            n_train=int(len(data.train_indices)), n_validation=int(len(data.splits.validation)),
            n_test=int(data.images.test[1].numel()),
            seeds={"budget": config.seed, "init": config.seed, "split": config.split_seed},
            versions=software_versions(), threads=torch.get_num_threads(),
            wall_time_s=round(time.perf_counter() - started, 3))
        primary = record["test"][METRIC]
        echo(f"{record['method']} budget {config.budget} seed {config.seed}: test {METRIC} {primary:.4g} "
             f"(validation {record['validation'][METRIC]:.4g} at epoch {record['selected_epoch']})")
        write_json_record(out / "indices.json", data.indices_record())
        write_yaml_record(out / "config.yaml", config_to_dict(config))
        write_json_record(out / METRICS_FILE, record)  # last: its presence marks a finished run
        return record


def _normaliser(config: VisionFinetuneConfig):
    from photossl.vision import normalize_images

    return lambda images: normalize_images(images, config.dataset)


def _probe(config: VisionFinetuneConfig, data: VisionFinetuneData, device: torch.device) -> dict[str, Any]:
    """The shared linear probe of the frozen encoder: fitted on the budget's images from ``seed``, scored on the
    validation images and, refitted from the same seed, on the test images."""
    from photossl.training import encode, linear_probe

    encoder, _, pretrain_record = _encoder(config, data.in_channels)
    encoder.to(device)
    transform = _normaliser(config)

    def features(images: torch.Tensor) -> torch.Tensor:
        return encode(encoder, images, config.eval_batch_size, device, transform)

    (x_train, y_train), (x_val, y_val) = data.train(), data.validation()
    f_train, f_val = features(x_train), features(x_val)
    validation = linear_probe(f_train, y_train, f_val, y_val, [config.seed], epochs=config.epochs)
    x_test, y_test = data.test()
    test = linear_probe(f_train, y_train, features(x_test), y_test, [config.seed], epochs=config.epochs)
    return {"method": config.method, "kind": "probe", "mode": "frozen", "head": "linear", "metric": METRIC,
            METRIC: scores(test.mean)[METRIC], "test": scores(test.mean), "validation": scores(validation.mean),
            "selected_epoch": config.epochs, "epochs_run": config.epochs,
            "epochs_planned": config.epochs, "stopped_early": False, "pretrained": pretrain_record,
            "device": str(device)}


def _augmenter(config: VisionFinetuneConfig, size: int):
    """Random resized crops and flips of training images in [0, 1] (None: the images as they are)."""
    from photossl.vision import SimCLRAugment

    if config.crop_scale is None and config.flip_p == 0:
        return None
    scale = tuple(config.crop_scale) if config.crop_scale is not None else (1.0, 1.0)
    ratio = (3 / 4, 4 / 3) if config.crop_scale is not None else (1.0, 1.0)
    return SimCLRAugment(size=size, scale=scale, ratio=ratio, flip_p=config.flip_p, jitter_p=0.0, gray_p=0.0)


def _lr_factor(config: VisionFinetuneConfig, total: int, warmup: int) -> Callable[[int], float]:
    """The rate of step s as a fraction of each parameter group's own: linear warm-up, then cosine or constant."""
    from photossl.training import warmup_cosine

    if config.schedule == "cosine":
        return lambda step: warmup_cosine(step, total, warmup, 1.0)
    return lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0


def _train(config: VisionFinetuneConfig, data: VisionFinetuneData, out: Path, device: torch.device) -> dict[str, Any]:
    """Encoder and linear head trained with cross-entropy; the epoch of the lowest validation error is kept."""
    from tqdm.auto import tqdm

    encoder, encoder_name, pretrain_record = _encoder(config, data.in_channels)
    with seeded(_INIT_STREAM + 1, config.seed):
        head = nn.Linear(encoder.feature_dim, data.n_classes)
    model = nn.Sequential(encoder, head).to(device)
    scale = config.encoder_lr_scale if pretrain_record is not None else 1.0  # pretrained weights move more gently
    groups = [{"params": list(head.parameters()), "lr": config.lr},
              {"params": list(encoder.parameters()), "lr": config.lr * scale}]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    (x_train, y_train), (x_val, y_val) = data.train(), data.validation()
    n = x_train.shape[0]
    steps = -(-n // config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(config, config.epochs * steps, round(config.warmup_epochs * steps)))
    augment = _augmenter(config, data.image_size)
    transform = _normaliser(config)
    order_generator = torch_generator(_ORDER_STREAM, config.seed)
    augment_generator = torch_generator(_AUGMENT_STREAM, config.seed)  # on the CPU: the same crops on any device

    history: list[dict[str, Any]] = []
    best: tuple = (math.inf, 0, None, None)  # (validation error, epoch, model state, validation metrics)
    bar = tqdm(range(config.epochs), desc=f"finetune {config.method} b={config.budget} s={config.seed}",
               disable=not config.progress, leave=False, dynamic_ncols=True)
    for epoch in bar:
        tick = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=order_generator)
        loss_sum, correct, lr = 0.0, 0, optimizer.param_groups[0]["lr"]
        for start in range(0, n, config.batch_size):
            idx = order[start: start + config.batch_size]
            x, y = x_train[idx].to(device), y_train[idx].to(device)
            if augment is not None:
                x = augment(x, augment_generator)
            logits = model(transform(x))
            loss = nn.functional.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise PhotosslError(f"the loss became {float(loss)} at epoch {epoch + 1}; lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * idx.numel()
            correct += int((logits.detach().argmax(1) == y).sum())
        metrics = scores(accuracy(model, x_val, y_val, transform, device, config.eval_batch_size))
        if metrics[METRIC] < best[0] or best[2] is None:
            best = (metrics[METRIC], epoch + 1, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                    metrics)
        history.append({"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / n, "train_acc": correct / n,
                        f"val_{METRIC}": metrics[METRIC], "best_epoch": best[1],
                        "epoch_time_s": round(time.perf_counter() - tick, 4)})
        bar.set_postfix(val=f"{metrics[METRIC]:.4g}", best=f"{best[0]:.4g}@{best[1]}", refresh=False)
        if config.patience and epoch + 1 - best[1] >= config.patience:
            break
    bar.close()

    write_history(out / "history.csv", history)
    model.load_state_dict(best[2])
    x_test, y_test = data.test()  # the only read of the test images, after selection
    test = scores(accuracy(model, x_test, y_test, transform, device, config.eval_batch_size))
    payload = {"format": MODEL_FORMAT, "encoder": encoder_name, "in_channels": data.in_channels,
               "n_classes": data.n_classes, "dataset": config.dataset, "image_size": data.image_size,
               "method": config.method, "state": model.state_dict(), "config": config_to_dict(config)}
    atomic_torch_save(payload, out / MODEL_FILE)
    return {"method": config.method, "kind": "network", "mode": "full", "head": "linear", "metric": METRIC,
            METRIC: test[METRIC], "test": test, "validation": best[3], "selected_epoch": best[1],
            "epochs_run": len(history), "epochs_planned": config.epochs, "stopped_early": len(history) < config.epochs,
            "pretrained": pretrain_record, "device": str(device)}
