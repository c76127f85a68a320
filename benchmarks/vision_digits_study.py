"""Linear-probe accuracy of supervised / SimCLR / E-SimCLR / CARE on scikit-learn's digits, over seeds.

Every self-supervised run is the project's own command,

    photossl pretrain --config pipelines/vision-digits.yaml --method M --seed S --epochs E --out RUNS/M-seedS

whose trainer writes the kNN monitor per epoch and the frozen linear probe at the end (``linear_probe.json``). The
supervised baseline trains the same encoder (DigitsCNN) with labels: cross-entropy through a linear head, the same
epochs, batch, optimiser and schedule, and a simple augmentation (random resized crop, scale 0.6-1, nothing else).
It is read out with the trainer's own kNN monitor and linear probe on its frozen features, and by its own head.
A randomly initialised encoder (no training) is scored the same way, as the floor every method has to beat.

Symmetry read-outs on the test split (un-augmented 16-px images): the rotation-prediction accuracy of E-SimCLR's
head (on the rotation view it was trained on, and on whole images), a linear probe of the rotation label on every
method's frozen features, and the Wahba error (:func:`photossl.evaluation.wahba_error`) between the embeddings of
the images and of their 90/180/270-degree rotations and horizontal mirror.

    python benchmarks/vision_digits_study.py run --epochs 30 --seeds 0,1,2 --jobs 2
    python benchmarks/vision_digits_study.py summarise          # re-read the run folders, rewrite the results

Run folders go to ``runs/vision-digits-study`` (finished runs are skipped, interrupted ones resumed); tables,
figure and README to ``docs/results/vision-digits``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from photossl.errors import PhotosslError
from photossl.evaluation import wahba_error
from photossl.training import (
    build_encoder_from_config,
    build_model,
    encode,
    linear_probe,
    load_checkpoint,
    make_config,
    resolve_defaults,
)
from photossl.training.checkpoint import atomic_torch_save
from photossl.training.schedule import WarmupCosineSchedule
from photossl.training.sources import TrainingData, load_training_data
from photossl.training.trainer import final_linear_probe, monitor_metric, select_device
from photossl.vision import SimCLRAugment, normalize_images, rotate_four, rotation_view

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "pipelines" / "vision-digits.yaml"
DEFAULT_RUNS = REPO / "runs" / "vision-digits-study"
DEFAULT_RESULTS = REPO / "docs" / "results" / "vision-digits"
SSL_METHODS = ("simclr", "essl", "care")
METHOD_LABELS = {"random": "random init (no training)", "supervised": "supervised (CE)", "simclr": "SimCLR",
                 "essl": "E-SimCLR", "care": "CARE"}
SUPERVISED_LR = 0.1  # base rate × batch/256: cross-entropy tolerates a larger step than InfoNCE's 0.03
ROTATION_PROBE_EPOCHS = 50
_EVAL_STREAM = 0x5EED  # generator seed of the evaluation's rotation-view crops, fixed for every run
TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rot90": lambda x: torch.rot90(x, 1, dims=(-2, -1)),
    "rot180": lambda x: torch.rot90(x, 2, dims=(-2, -1)),
    "rot270": lambda x: torch.rot90(x, 3, dims=(-2, -1)),
    "hflip": lambda x: torch.flip(x, dims=(-1,)),
}


# ------------------------------------------------------------------------------------------------ configuration
def load_study_config(config_path: str | Path, **overrides: Any):
    """The resolved :class:`~photossl.training.PretrainConfig` of a YAML file with ``overrides`` applied."""
    import yaml

    values = yaml.safe_load(Path(config_path).read_text()) or {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return resolve_defaults(make_config(values))


def pretrain_command(config_path: str | Path, method: str, seed: int, epochs: int, out: str | Path,
                     resume: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The ``photossl pretrain`` command line of one self-supervised run (the photossl next to this Python)."""
    exe = Path(sys.executable).with_name("photossl")
    head = [str(exe)] if exe.exists() else [sys.executable, "-m", "photossl.cli.main"]
    cmd = head + ["pretrain", "--config", str(config_path), "--method", method, "--seed", str(seed),
                  "--epochs", str(epochs), "--out", str(out), "--no-progress", *extra]
    return cmd + ["--resume"] if resume else cmd


def supervised_command(config_path: str | Path, seed: int, epochs: int, out: str | Path,
                       extra: Sequence[str] = ()) -> list[str]:
    """This script's own command line for one supervised run."""
    return [sys.executable, str(Path(__file__).resolve()), "supervised", "--config", str(config_path),
            "--seed", str(seed), "--epochs", str(epochs), "--out", str(out), *extra]


def run_dir(runs: str | Path, method: str, seed: int) -> Path:
    return Path(runs) / f"{method}-seed{seed}"


def is_complete(run: Path, epochs: int) -> bool:
    """Whether ``run`` holds a finished run of ``epochs`` epochs (SSL: run.json; supervised: supervised.json)."""
    for name in ("run.json", "supervised.json"):
        record_path = run / name
        if record_path.exists():
            record = json.loads(record_path.read_text())
            return record.get("status") == "complete" and int(record.get("config", {}).get("epochs", -1)) == epochs
    return False


# --------------------------------------------------------------------------------------------------- supervised
def simple_augment(size: int) -> SimCLRAugment:
    """Random resized crop (scale 0.6-1, aspect 3/4-4/3) and nothing else: no flip (a mirrored 2 is no digit)."""
    return SimCLRAugment(size=size, scale=(0.6, 1.0), flip_p=0.0, jitter_p=0.0, gray_p=0.0)


class Classifier(nn.Module):
    """Encoder followed by a linear head. Shape: (B, C, H, W) -> (B, n_classes)."""

    def __init__(self, encoder: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


@torch.no_grad()
def head_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, transform) -> float:
    """Top-1 accuracy of ``model``'s logits on (transformed) images (N, C, H, W), labels (N,), in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for start in range(0, images.shape[0], 512):
            x = transform(images[start : start + 512].to(device))
            correct += int((model(x).argmax(1) == labels[start : start + 512].to(device)).sum())
        return correct / images.shape[0]
    finally:
        model.train(was_training)


def train_supervised(config, out: str | Path, data: TrainingData | None = None, lr: float = SUPERVISED_LR,
                     echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train DigitsCNN + linear head with cross-entropy as ``config`` (resolved) says: its epochs, batch, SGD
    momentum and weight decay, warm-up + cosine schedule, seed; ``lr`` is the base rate (× batch/256).

    Batches are drawn without replacement, the last partial one dropped, as the trainer does. Writes
    ``out/supervised.json`` (config, per-epoch log, head accuracy, kNN, linear probe) and ``out/model.pt``;
    returns the record.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    data = data or load_training_data(config)
    images, labels = data.monitor_train  # the labelled train split (the pretraining pool of the digits)
    transform = lambda x: normalize_images(x, config.dataset)  # noqa: E731
    model = Classifier(build_encoder_from_config(config, data.in_channels), data.n_classes).to(device)
    n = images.shape[0]
    steps = n // config.batch_size
    if steps < 1:
        raise PhotosslError(f"batch_size {config.batch_size} exceeds the {n} training images")
    base_lr = lr * config.batch_size / 256 if config.lr_scaling == "linear" else lr
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = WarmupCosineSchedule(optimizer, config.epochs * steps, round(config.warmup_epochs * steps), base_lr)
    augment = simple_augment(data.image_size)
    order_gen = torch.Generator().manual_seed(config.seed)
    augment_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    started = time.time()
    log = []
    for epoch in range(config.epochs):
        model.train()
        tick = time.perf_counter()
        order = torch.randperm(n, generator=order_gen)[: steps * config.batch_size].view(steps, -1)
        loss_sum = correct = 0.0
        for idx in order:
            x = transform(augment(images[idx].to(device), augment_gen))
            y = labels[idx].to(device)
            schedule.step()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach())
            correct += float((logits.argmax(1) == y).float().mean())
        row = {"epoch": epoch + 1, "loss": loss_sum / steps, "train_acc": correct / steps,
               "epoch_time_s": time.perf_counter() - tick}
        row.update(monitor_metric(config, data, model.encoder, device))
        log.append(row)
        echo(f"supervised seed {config.seed} epoch {epoch + 1}/{config.epochs}: loss {row['loss']:.4f} "
             f"kNN {row.get('knn_top1', float('nan')):.4f}")
    x_test, y_test = data.monitor_test
    record = {
        "status": "complete",
        "method": "supervised",
        "seed": config.seed,
        "config": {**_plain_config(config), "supervised_lr": lr, "augment": "random resized crop, scale 0.6-1"},
        "effective_lr": base_lr,
        "steps_per_epoch": steps,
        "metrics": log,
        "head_accuracy": head_accuracy(model, x_test, y_test, transform),
        "knn_top1": log[-1].get("knn_top1") if log else None,
        "linear_probe": final_linear_probe(config, data, model.encoder, device),
        "wall_time_s": round(time.time() - started, 3),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    atomic_torch_save({"encoder": model.encoder.state_dict(), "head": model.head.state_dict(),
                       "config": record["config"], "in_channels": data.in_channels}, out / "model.pt")
    _write_json(out / "supervised.json", record)
    return record


def _plain_config(config) -> dict[str, Any]:
    from photossl.config import config_to_dict

    return config_to_dict(config)


# --------------------------------------------------------------------------------------------------- read-outs
def rotation_probe(encoder: nn.Module, train_images: torch.Tensor, test_images: torch.Tensor, transform,
                   seeds: Sequence[int] = (0,), epochs: int = ROTATION_PROBE_EPOCHS) -> float:
    """Test accuracy of a linear classifier of the quarter-turn label (0-3) on frozen features of all four
    rotations of each image; 0.25 is chance. Shape: images (N, C, H, H)."""
    x_train, r_train = rotate_four(train_images)
    x_test, r_test = rotate_four(test_images)
    f_train = encode(encoder, x_train, transform=transform)
    f_test = encode(encoder, x_test, transform=transform)
    return linear_probe(f_train, r_train, f_test, r_test, seeds, epochs=epochs).mean


@torch.no_grad()
def rotation_head_accuracy(model, images: torch.Tensor, transform, crop: bool = True, seed: int = _EVAL_STREAM
                           ) -> float:
    """Accuracy of E-SimCLR's rotation head on test images: ``crop`` shows it the rotation view it was trained on
    (a half-size SimCLR crop at four rotations, crops drawn from ``seed``), else the four rotations of each whole
    image. ``model`` is a :class:`~photossl.training.PretrainModel` with a predictor."""
    if model.predictor is None:
        raise PhotosslError("this model has no rotation head")
    device = next(model.parameters()).device
    if crop:
        generator = torch.Generator().manual_seed(seed)
        size = images.shape[-1]
        x, labels = rotation_view(images, generator=generator, augment=SimCLRAugment(size=max(1, size // 2)))
    else:
        x, labels = rotate_four(images)
    was_training = model.training
    model.eval()
    try:
        logits = model.predictor(encode(model.encoder, x, transform=transform))
        return float((logits.argmax(1) == labels.to(device)).float().mean())
    finally:
        model.train(was_training)


def _standardise(reference: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every feature by the mean and std of ``reference`` (N, D), as the linear probe does."""
    mean, std = reference.mean(0), reference.std(0).clamp_min(1e-6)
    return [(x - mean) / std for x in (reference, *others)]


@torch.no_grad()
def wahba_errors(base: torch.Tensor, transformed: dict[str, torch.Tensor], normalize: bool = False,
                 seed: int = 0) -> dict[str, float]:
    """Relative Wahba error (best rotation in SO(d)) between embeddings ``base`` (N, D) of images and
    ``transformed[g]`` (N, D) of the same images under each g, plus ``chance``: the error of the same fit after
    pairing every image with a random other one (a permutation drawn from ``seed``), the level of no relation.

    Needs N well above D: with N <= D a rotation fits any two sets almost exactly.
    """
    out = {name: wahba_error(base, other, normalize=normalize) for name, other in transformed.items()}
    perm = torch.randperm(base.shape[0], generator=torch.Generator().manual_seed(seed)).to(base.device)
    out["chance"] = wahba_error(base, base[perm], normalize=normalize)
    return out


@dataclass
class EvalData:
    """Labelled train and test images (N, C, H, W) in [0, 1], and the config they were loaded for."""

    config: Any
    data: TrainingData

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.monitor_train

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.monitor_test

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_images(x, self.config.dataset)


def symmetry_readouts(encoder: nn.Module, ev: EvalData, projector: nn.Module | None = None) -> dict[str, float]:
    """Rotation-probe accuracy and Wahba errors on the test images, for each transformation of
    :data:`TRANSFORMS`: of the encoder features standardised as the linear probe sees them, and (when
    ``projector`` is given) of the L2-normalised projector output, where CARE's term acts."""
    encoder.eval()
    images = ev.test[0]
    row = {"rotation_probe_acc": rotation_probe(encoder, ev.train[0], images, ev.transform)}
    base = encode(encoder, images, transform=ev.transform)
    moved = {name: encode(encoder, g(images), transform=ev.transform) for name, g in TRANSFORMS.items()}
    standardised = _standardise(base, *moved.values())
    enc = wahba_errors(standardised[0], dict(zip(moved, standardised[1:])))
    row.update({f"wahba_enc_{k}": v for k, v in enc.items()})
    if projector is not None:
        was_training = projector.training
        projector.eval()
        with torch.no_grad():
            proj = wahba_errors(projector(base), {k: projector(v) for k, v in moved.items()}, normalize=True)
        projector.train(was_training)
        row.update({f"wahba_proj_{k}": v for k, v in proj.items()})
    return row


def evaluate_ssl_run(run: str | Path, ev: EvalData) -> dict[str, Any]:
    """One row of results.csv from a finished ``photossl pretrain`` run folder."""
    run = Path(run)
    record = json.loads((run / "run.json").read_text())
    payload = load_checkpoint(run)
    config = make_config(payload["config"])
    model = build_model(config, int(payload["in_channels"]))
    model.load_state_dict(payload["model"])
    model.eval()
    last = record.get("last_epoch", {})
    probe = record["linear_probe"]
    row: dict[str, Any] = {
        "method": config.spec.name, "seed": config.seed, "epochs": config.epochs,
        "linear_probe_acc": probe["mean"], "linear_probe_std_over_probe_seeds": probe["std"],
        "knn_top1": last.get("knn_top1"), "head_acc": None,
        "lambda_care": config.lambda_care if config.spec.care else None,
        "lambda_care_reference": config.lambda_care / (2 * (config.care_chunk - 1)) if config.spec.care else None,
        "lambda_predict": config.lambda_predict if config.spec.predict else None,
        "final_loss": last.get("loss"), "train_predict_acc": last.get("predict_acc"),
        "wall_time_s": record.get("wall_time_s_last_call"),
    }
    if config.spec.predict:
        row["rotation_head_acc_crop"] = rotation_head_accuracy(model, ev.test[0], ev.transform, crop=True)
        row["rotation_head_acc_full"] = rotation_head_accuracy(model, ev.test[0], ev.transform, crop=False)
    row.update(symmetry_readouts(model.encoder, ev, model.projector))
    return row


def evaluate_supervised_run(run: str | Path, ev: EvalData) -> dict[str, Any]:
    run = Path(run)
    record = json.loads((run / "supervised.json").read_text())
    payload = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    encoder = build_encoder_from_config(ev.config, int(payload["in_channels"]))
    encoder.load_state_dict(payload["encoder"])
    row = {
        "method": "supervised", "seed": record["seed"], "epochs": record["config"]["epochs"],
        "linear_probe_acc": record["linear_probe"]["mean"],
        "linear_probe_std_over_probe_seeds": record["linear_probe"]["std"],
        "knn_top1": record["knn_top1"], "head_acc": record["head_accuracy"],
        "final_loss": record["metrics"][-1]["loss"] if record["metrics"] else None,
        "wall_time_s": record["wall_time_s"],
    }
    row.update(symmetry_readouts(encoder, ev))
    return row


def evaluate_random_encoder(seed: int, ev: EvalData) -> dict[str, Any]:
    """The floor: an untrained encoder (initialised from ``seed``), read out as every trained one is."""
    torch.manual_seed(seed)
    encoder = build_encoder_from_config(ev.config, ev.data.in_channels)
    device = select_device(ev.config.device)
    encoder.to(device)
    probe = final_linear_probe(ev.config, ev.data, encoder, device)
    row = {"method": "random", "seed": seed, "epochs": 0, "linear_probe_acc": probe["mean"],
           "linear_probe_std_over_probe_seeds": probe["std"],
           "knn_top1": monitor_metric(ev.config, ev.data, encoder, device)["knn_top1"]}
    row.update(symmetry_readouts(encoder, ev))
    return row


# ------------------------------------------------------------------------------------------------------ tables
WAHBA_KEYS = (*TRANSFORMS, "chance")
COLUMNS = [
    "method", "seed", "epochs", "linear_probe_acc", "linear_probe_std_over_probe_seeds", "knn_top1", "head_acc",
    "rotation_head_acc_crop", "rotation_head_acc_full", "train_predict_acc", "rotation_probe_acc",
    *[f"wahba_enc_{k}" for k in WAHBA_KEYS], *[f"wahba_proj_{k}" for k in WAHBA_KEYS],
    "lambda_care", "lambda_care_reference", "lambda_predict", "final_loss", "wall_time_s",
]
SUMMARY_METRICS = ["linear_probe_acc", "knn_top1", "head_acc", "rotation_head_acc_crop", "rotation_head_acc_full",
                   "rotation_probe_acc", *[f"wahba_enc_{k}" for k in WAHBA_KEYS],
                   *[f"wahba_proj_{k}" for k in WAHBA_KEYS], "wall_time_s"]
METHOD_ORDER = ["random", "supervised", "simclr", "essl", "care"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value) of the non-missing values."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return math.nan, math.nan
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, std


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method (in METHOD_ORDER, then any other): n_seeds and ``<metric>_mean`` / ``<metric>_std`` over seeds."""
    methods = sorted({r["method"] for r in rows},
                     key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m))
    out = []
    for method in methods:
        group = [r for r in rows if r["method"] == method]
        entry: dict[str, Any] = {"method": method, "n_seeds": len(group),
                                 "seeds": " ".join(str(r["seed"]) for r in group)}
        for metric in SUMMARY_METRICS:
            entry[f"{metric}_mean"], entry[f"{metric}_std"] = mean_std([r.get(metric) for r in group])
        out.append(entry)
    return out


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt_csv(row.get(k)) for k in columns})
    os.replace(tmp, path)


def _fmt_csv(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def _pm(entry: dict[str, Any], metric: str, scale: float = 100.0, digits: int = 1) -> str:
    mean, std = entry.get(f"{metric}_mean", math.nan), entry.get(f"{metric}_std", math.nan)
    if mean is None or math.isnan(mean):
        return "–"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def summary_markdown(summary: Sequence[dict[str, Any]]) -> str:
    """The two tables of the README: accuracies, and symmetry read-outs."""
    lines = ["| method | seeds | linear probe (%) | kNN top-1 (%) | own head (%) | wall / run (s) |",
             "|---|---|---|---|---|---|"]
    for e in summary:
        lines.append(f"| {METHOD_LABELS.get(e['method'], e['method'])} | {e['n_seeds']} | "
                     f"{_pm(e, 'linear_probe_acc')} | {_pm(e, 'knn_top1')} | {_pm(e, 'head_acc')} | "
                     f"{_pm(e, 'wall_time_s', 1.0, 0)} |")
    lines += ["", "| method | rotation head, crop view (%) | rotation head, whole image (%) "
              "| rotation linear probe (%) | Wahba, encoder (standardised): rot90 / rot180 / rot270 / hflip / chance "
              "| Wahba, projector (L2-normalised): rot90 / rot180 / rot270 / hflip / chance |",
              "|---|---|---|---|---|---|"]
    for e in summary:
        enc = " / ".join(_pm(e, f"wahba_enc_{k}", 1.0, 3) for k in WAHBA_KEYS)
        proj = " / ".join(_pm(e, f"wahba_proj_{k}", 1.0, 3) for k in WAHBA_KEYS)
        lines.append(f"| {METHOD_LABELS.get(e['method'], e['method'])} | {_pm(e, 'rotation_head_acc_crop')} | "
                     f"{_pm(e, 'rotation_head_acc_full')} | {_pm(e, 'rotation_probe_acc')} | {enc} | "
                     f"{proj if proj.strip('– /') else '–'} |")
    return "\n".join(lines) + "\n"


def plot_summary(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Linear-probe and kNN accuracy per method: one dot per seed, a bar for the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(rows)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    width = 0.38
    for j, (metric, label) in enumerate((("linear_probe_acc", "linear probe"), ("knn_top1", "kNN (k=200)"))):
        for i, e in enumerate(summary):
            x = i + (j - 0.5) * width
            ax.bar(x, 100 * e[f"{metric}_mean"], width, color=f"C{j}", alpha=0.5, label=label if i == 0 else None)
            seeds = [100 * r[metric] for r in rows if r["method"] == e["method"] and r.get(metric) is not None]
            ax.plot([x] * len(seeds), seeds, "k.", ms=4)
    ax.set_xticks(range(len(summary)), [METHOD_LABELS.get(e["method"], e["method"]).split(" (")[0]
                                       for e in summary])
    low = min(100 * r[m] for r in rows for m in ("linear_probe_acc", "knn_top1") if r.get(m) is not None)
    ax.set_ylim(max(0.0, math.floor(low) - 3), 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("digits (sklearn, 16 px): frozen-feature read-outs")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None  # JSON has no NaN
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_json_safe(record), indent=2, default=str) + "\n")
    os.replace(tmp, path)


# -------------------------------------------------------------------------------------------------- the study
def _run_logged(cmd: list[str], log: Path) -> tuple[int, float]:
    tick = time.time()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n")
        handle.flush()
        rc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO).returncode
    return rc, time.time() - tick


def run_study(config_path: Path, runs: Path, methods: Sequence[str], seeds: Sequence[int], epochs: int, jobs: int,
              extra: Sequence[str] = ()) -> dict[str, Any]:
    """Train every (method, seed) not already complete, ``jobs`` processes at a time; returns timing facts."""
    tasks = []
    for seed in seeds:  # seed-major, so that a partial study still covers every method
        for method in methods:
            out = run_dir(runs, method, seed)
            if is_complete(out, epochs):
                continue
            if method == "supervised":
                cmd = supervised_command(config_path, seed, epochs, out, extra)
            else:
                cmd = pretrain_command(config_path, method, seed, epochs, out,
                                       resume=(out / "checkpoint.pt").exists(), extra=extra)
            tasks.append((method, seed, cmd, runs / "logs" / f"{method}-seed{seed}.log"))
    started = time.time()
    failures = []

    def launch(task):
        method, seed, cmd, log = task
        rc, wall = _run_logged(cmd, log)
        print(f"{method} seed {seed}: rc {rc}, {wall:.0f} s (log {log})", flush=True)
        if rc:
            failures.append(f"{method} seed {seed} (see {log})")
        return method, seed, wall

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        walls = list(pool.map(launch, tasks))
    if failures:
        raise SystemExit(f"failed runs: {', '.join(failures)}")
    return {"training_wall_s": round(time.time() - started, 1), "runs_trained": len(tasks),
            "per_run_wall_s": {f"{m}-seed{s}": round(w, 1) for m, s, w in walls}}


def collect_rows(config_path: Path, runs: Path, methods: Sequence[str], seeds: Sequence[int], epochs: int,
                 random_floor: bool = True, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Evaluate every finished run (and the random-encoder floor) into results rows."""
    config = load_study_config(config_path, **(overrides or {}))
    if config.threads is not None:  # tiny matmuls: extra threads only wait for each other on a busy machine
        torch.set_num_threads(config.threads)
    ev = EvalData(config, load_training_data(config))
    rows = []
    for method in methods:
        for seed in seeds:
            out = run_dir(runs, method, seed)
            if not is_complete(out, epochs):
                print(f"skipping {out}: not a complete {epochs}-epoch run", file=sys.stderr)
                continue
            rows.append(evaluate_supervised_run(out, ev) if method == "supervised" else evaluate_ssl_run(out, ev))
    if random_floor:
        rows += [evaluate_random_encoder(seed, ev) for seed in seeds]
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (order.get(r["method"], len(order)), r["seed"]))


def write_results(rows: Sequence[dict[str, Any]], results: Path, meta: dict[str, Any]) -> None:
    """results.csv (one row per run), summary.csv (mean / std per method), study.json (meta), figure."""
    results.mkdir(parents=True, exist_ok=True)
    summary = summarise(rows)
    write_csv(results / "results.csv", rows, COLUMNS)
    summary_columns = ["method", "n_seeds", "seeds"] + [f"{m}_{s}" for m in SUMMARY_METRICS for s in ("mean", "std")]
    write_csv(results / "summary.csv", summary, summary_columns)
    _write_json(results / "study.json", {**meta, "summary": summary})
    (results / "summary_tables.md").write_text(summary_markdown(summary))
    plot_summary(rows, results / "accuracy.png")


def machine_facts() -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.is_available(), "platform": platform.platform(),
            "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _display_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (what the README's command shows)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "summarise"):
        p = sub.add_parser(name, help="train missing runs, then evaluate" if name == "run" else "evaluate only")
        p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="pipeline YAML [vision-digits.yaml]")
        p.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="folder of the run folders")
        p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="where tables and figure go")
        p.add_argument("--methods", default="supervised,simclr,essl,care", help="comma-separated methods")
        p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
        p.add_argument("--epochs", type=int, default=30, help="epochs of every run [30]")
        p.add_argument("--jobs", type=int, default=2, help="runs trained at once (each uses the config's threads)")
        p.add_argument("--limit-samples", type=int, default=None, help="cap on images (quick checks only)")
    sp = sub.add_parser("supervised", help="one supervised run (what 'run' launches)")
    sp.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="pipeline YAML")
    sp.add_argument("--seed", type=int, default=0, help="seed of initialisation, order, augmentation")
    sp.add_argument("--epochs", type=int, default=30, help="training epochs")
    sp.add_argument("--out", type=Path, required=True, help="run folder")
    sp.add_argument("--lr", type=float, default=SUPERVISED_LR, help="base learning rate (× batch/256)")
    sp.add_argument("--limit-samples", type=int, default=None, help="cap on images (quick checks only)")
    args = parser.parse_args(argv)

    if args.command == "supervised":
        config = load_study_config(args.config, seed=args.seed, epochs=args.epochs,
                                   limit_samples=args.limit_samples, progress=False)
        train_supervised(config, args.out, lr=args.lr)
        return

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    extra = ["--limit-samples", str(args.limit_samples)] if args.limit_samples else []
    overrides = {"limit_samples": args.limit_samples}
    tick = time.time()
    command = " ".join([Path(sys.executable).name, *sys.argv])
    meta: dict[str, Any] = {"command": command, "config": _display_path(args.config), "methods": methods,
                            "seeds": seeds, "epochs": args.epochs}
    if args.command == "run":
        meta.update(run_study(args.config, args.runs, methods, seeds, args.epochs, args.jobs, extra))
    elif (args.results / "study.json").exists():  # keep the training facts of the run that made the folders
        previous = json.loads((args.results / "study.json").read_text())
        meta = {**{k: v for k, v in previous.items() if k != "summary"}, **meta,
                "command": previous.get("command", command), "summarise_command": command}
    eval_tick = time.time()
    rows = collect_rows(args.config, args.runs, methods, seeds, args.epochs, overrides=overrides)
    prefix = "" if args.command == "run" else "summarise_"
    meta[f"{prefix}evaluation_wall_s"] = round(time.time() - eval_tick, 1)
    meta[f"{prefix}total_wall_s"] = round(time.time() - tick, 1)
    meta[f"{prefix}machine"] = machine_facts()
    write_results(rows, args.results, meta)
    print(summary_markdown(summarise(rows)))
    print(f"wrote {args.results} in {time.time() - tick:.0f} s")


if __name__ == "__main__":
    main()
