"""Fine-tune an encoder and a regression head on a label budget; select on validation; score the test set once.

Outputs in FT: ``metrics.json`` (test metrics of the selected model, its validation metrics, selected epoch, wall
time, seeds, budget, method, versions), ``history.csv`` (one row per epoch), ``indices.json`` (the train, validation
and test cells), ``config.yaml``, and the model: ``model.pt`` (network) or ``model.pkl`` (classical baseline), which
:func:`photossl.finetune.load_finetuned` and ``photossl predict`` read.
"""

from __future__ import annotations

import csv
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from photossl.files import replace_atomically, write_json_record, write_yaml_record
from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.data import FinetuneData, Part
from photossl.finetune.targets import SYMMETRY_NAME, TargetInfo, score

MODEL_FORMAT = "photossl-finetuned"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
_INIT_STREAM = 0xF17E
_ORDER_STREAM = 0x0DE5


def versions() -> dict[str, str]:
    import sklearn

    from photossl import __version__

    return {"photossl": str(__version__), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "scikit-learn": str(sklearn.__version__), "python": platform.python_version()}


def _seed(stream: int, seed: int) -> int:
    return int(np.random.SeedSequence([stream, seed]).generate_state(1, np.uint64)[0] >> np.uint64(1))


# ------------------------------------------------------------------------------------------------------- the model
class Regressor(nn.Module):
    """Encoder and regression head on standardised targets. Shape: (B, C, N, N) -> (B, out_dim).

    With ``frozen`` the encoder runs without gradients and in eval mode (its batch-norm statistics stay fixed).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, frozen: bool = False):
        super().__init__()
        self.encoder, self.head, self.frozen = encoder, head, frozen
        if frozen:
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> Regressor:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            with torch.no_grad():
                features = self.encoder(x)
            return self.head(features)
        return self.head(self.encoder(x))


def encoder_spec(name: str, in_channels: int, circular_padding: bool) -> dict[str, Any]:
    """Keyword arguments of :func:`photossl.models.build_encoder` (as ``photossl.training`` builds encoders)."""
    kwargs: dict[str, Any] = {"in_channels": int(in_channels)}
    if name in ("essl", "small"):
        kwargs["circular_padding"] = bool(circular_padding)
    return {"name": name, "kwargs": kwargs}


def build_head(in_dim: int, out_dim: int, kind: str, dims: list[int]) -> nn.Module:
    from photossl.models import RegressionHead

    if kind == "linear":
        return RegressionHead.linear_probe(in_dim, out_dim)
    return RegressionHead(in_dim, out_dim, hidden_dims=tuple(dims))


def _encoder(config: FinetuneConfig, in_channels: int):
    """(encoder, spec, method label, pretraining config or None): pretrained weights or a freshly initialised one."""
    from photossl.models import build_encoder

    if config.pretrained is None:
        spec = encoder_spec(config.encoder, in_channels, config.circular_padding)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
            torch.manual_seed(_seed(_INIT_STREAM, config.seed))
            encoder = build_encoder(spec["name"], **spec["kwargs"])
        return encoder, spec, "supervised", None
    from photossl.training import load_pretrained

    encoder, pretrain_config = load_pretrained(config.pretrained)
    if pretrain_config.track != "photonics":
        raise PhotosslError(f"{config.pretrained} was pretrained on the {pretrain_config.track} track, not photonics")
    spec = encoder_spec(pretrain_config.encoder, in_channels, pretrain_config.circular_padding)
    return encoder, spec, pretrain_config.method, pretrain_config


# ------------------------------------------------------------------------------------------------- normalisation
class TargetScaler:
    """y -> (y − mean) / scale with a per-output mean and one overall scale, fitted on the training targets."""

    def __init__(self, mean: torch.Tensor, scale: float):
        self.mean, self.scale = mean, float(scale)

    @classmethod
    def fit(cls, targets: torch.Tensor) -> TargetScaler:
        flat = targets.reshape(targets.shape[0], -1).double()
        mean = flat.mean(0)
        scale = float((flat - mean).pow(2).mean().sqrt()) if flat.shape[0] > 1 else 1.0
        return cls(mean.float(), scale if scale > 0 and math.isfinite(scale) else 1.0)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """(B, *shape) -> (B, size)."""
        return (y.reshape(y.shape[0], -1) - self.mean.to(y)) / self.scale

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """(B, size) -> (B, size) in target units."""
        return z * self.scale + self.mean.to(z)


# -------------------------------------------------------------------------------------------------- augmentation
class Augmenter:
    """Random invariance transformations of a batch of cells, with the matching action on the targets."""

    def __init__(self, names: list[str], target: TargetInfo):
        from photossl.data.loaders import EPS_NORMALISATION
        from photossl.symmetry import SymmetryPolicy

        self.policy = SymmetryPolicy(invariant=list(names), eps_normalisation=EPS_NORMALISATION) if names else None
        self.target = target
        self.kpoints = None if target.kpoints is None else torch.as_tensor(target.kpoints)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """x (B, C, N, N), y (B, *shape) raw targets -> both transformed by one random element per cell."""
        if self.policy is None:
            return x, y
        from photossl.symmetry import transform_target_batch

        elements = self.policy.sample_invariant(x.shape[0], x.shape[-1], generator, device=x.device)
        x = elements.apply(x, self.policy.eps_normalisation)
        y = transform_target_batch(elements, SYMMETRY_NAME[self.target.name], y, self.kpoints)
        return x, y


# ----------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
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


# -------------------------------------------------------------------------------------------------------- outputs
def write_history(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(rows)

    replace_atomically(path, write)


def _refuse_finished(out: Path, overwrite: bool) -> None:
    if (out / METRICS_FILE).exists() and not overwrite:
        raise PhotosslError(f"{out} already holds a finished fine-tuning run; choose another --out or pass --overwrite")


def prepare_output(out: str | Path, overwrite: bool) -> Path:
    """Create ``out``; refuse a finished run there unless ``overwrite``, whose model and metrics are then removed."""
    out = Path(out)
    _refuse_finished(out, overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PhotosslError(f"cannot create {out}: {err.strerror or err}") from None
    for name in (METRICS_FILE, MODEL_FILE, "model.pkl"):  # never leave an old model next to new metrics
        if (out / name).exists():
            (out / name).unlink()
    return out


# ------------------------------------------------------------------------------------------------------- the run
def finetune(config: FinetuneConfig, out: str | Path, overwrite: bool = False, echo=None,
             dataset=None) -> dict[str, Any]:
    """Fine-tune (or fit the classical baseline) as ``config`` says, write FT = ``out``, return metrics.json's record.

    ``echo``: a function for one-line status messages. ``dataset``: ``config.data`` already opened with
    :func:`photossl.finetune.data.open_target_dataset`, to share it between runs. Raises PhotosslError for bad
    input (a budget larger than the labelled pool, a missing target, an existing run in ``out`` without
    ``overwrite``); nothing in ``out`` changes before the data are read.
    """
    from photossl.training.trainer import select_device

    echo = echo or (lambda message: None)
    config.validate()
    started = time.perf_counter()
    _refuse_finished(Path(out), overwrite)
    data = FinetuneData(config, keep_raw_eps=config.baseline != "none", dataset=dataset)
    threads = torch.get_num_threads()
    try:
        out = prepare_output(out, overwrite)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        if config.baseline != "none":
            from photossl.finetune.baselines import fit_classical

            record = fit_classical(config, data, out, echo)
        else:
            record = _finetune_network(config, data, out, select_device(config.device), echo)
        record.update(
            budget=config.budget, seed=config.seed, split_seed=data.splits.seed, target=config.target,
            target_variable=data.target.variable, n_train=int(len(data.train_indices)),
            n_validation=int(len(data.splits.validation)), n_test=int(len(data.splits.test)),
            seeds={"budget": config.seed, "init": config.seed, "split": data.splits.seed},
            data=str(data.path), versions=versions(), threads=torch.get_num_threads(),
            wall_time_s=round(time.perf_counter() - started, 3),
        )
        write_json_record(out / "indices.json", data.indices_record())
        write_yaml_record(out / "config.yaml", config_to_dict(config))
        write_json_record(out / METRICS_FILE, record)  # last: its presence marks a finished run
        return record
    finally:
        data.close()
        torch.set_num_threads(threads)


def _finetune_network(config: FinetuneConfig, data: FinetuneData, out: Path, device: torch.device,
                      echo) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from photossl.training.checkpoint import atomic_torch_save

    target = data.target
    train, val = data.train(), data.validation()
    in_channels = int(train.images.shape[1])
    encoder, spec, pretrained_method, pretrain_config = _encoder(config, in_channels)
    pretrain_record = None
    if pretrain_config is not None:
        overlap = data.pretraining_overlap(pretrain_config)
        pretrain_record = {"run": str(config.pretrained), "method": pretrain_config.method,
                           "epochs": pretrain_config.epochs, "encoder": pretrain_config.encoder,
                           "data": pretrain_config.data, "seed": pretrain_config.seed,
                           "held_out_cells_in_pretraining_pool": overlap}
        if overlap:
            echo(f"warning: {overlap} validation/test cells were in the pretraining pool of {config.pretrained} "
                 "(unlabelled); store the split in the dataset folder before pretraining to keep them out")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(_INIT_STREAM + 1, config.seed))
        head = build_head(encoder.feature_dim, target.size, config.head, config.head_dims)
    model = Regressor(encoder, head, frozen=config.mode == "frozen").to(device)
    scaler = TargetScaler.fit(train.targets)
    augment = Augmenter(config.augment, target)
    groups = [{"params": list(head.parameters()), "lr": config.lr}]
    if config.mode == "full":  # pretrained weights move more gently than a fresh encoder
        scale = config.encoder_lr_scale if pretrain_config is not None else 1.0
        groups.append({"params": list(encoder.parameters()), "lr": config.lr * scale})
    optimizer = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    n = train.images.shape[0]
    epochs = config.epochs_for(n)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs) if config.schedule == "cosine"
                else None)
    generator = torch.Generator().manual_seed(_seed(_ORDER_STREAM, config.seed))
    primary = target.primary_metric

    history: list[dict[str, Any]] = []
    best = (math.inf, 0, None, None)  # (validation error, epoch, model state, validation metrics)
    bar = tqdm(range(epochs), desc=f"finetune {config.method} b={config.budget} s={config.seed}",
               disable=not config.progress, leave=False, dynamic_ncols=True)
    for epoch in bar:
        tick = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, config.batch_size):
            idx = order[start: start + config.batch_size]
            x, y = augment(train.images[idx], train.targets[idx], generator)
            x, y = x.to(device, non_blocking=True), scaler.forward(y).to(device, non_blocking=True)
            loss = nn.functional.mse_loss(model(x).float(), y)
            if not torch.isfinite(loss):
                raise PhotosslError(f"the loss became {float(loss)} at epoch {epoch + 1}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * idx.numel()
        lr = optimizer.param_groups[0]["lr"]
        if schedule is not None:
            schedule.step()
        metrics = evaluate(model, scaler, val, target, device, config.eval_batch_size)
        error = metrics[primary]
        improved = error < best[0]
        if improved or best[2] is None:
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best = (error, epoch + 1, state, metrics)
        history.append({"epoch": epoch + 1, "lr": lr, "train_loss": total / n, f"val_{primary}": error,
                        "best_epoch": best[1], "epoch_time_s": round(time.perf_counter() - tick, 4)})
        bar.set_postfix(val=f"{error:.4g}", best=f"{best[0]:.4g}@{best[1]}", refresh=False)
        if config.patience and epoch + 1 - best[1] >= config.patience:
            break
    bar.close()
    write_history(out / "history.csv", history)

    model.load_state_dict(best[2])
    test = data.test()  # the only read of the test cells, after selection
    test_metrics = evaluate(model, scaler, test, target, device, config.eval_batch_size)
    method = config.label or pretrained_method
    atomic_torch_save(
        {
            "format": MODEL_FORMAT,
            "kind": "network",
            "encoder": spec,
            "head": {"kind": config.head, "in_dim": encoder.feature_dim, "out_dim": target.size,
                     "dims": list(config.head_dims)},
            "state": model.state_dict(),
            "target_mean": scaler.mean.cpu(),
            "target_scale": scaler.scale,
            "target": target.as_record(),
            "normalisation": list(data.normalisation),
            "image_size": data.image_size,
            "method": method,
            "config": config_to_dict(config),
        },
        out / MODEL_FILE,
    )
    echo(f"{method} budget {config.budget} seed {config.seed}: test {primary} {test_metrics[primary]:.4g} "
         f"(validation {best[0]:.4g} at epoch {best[1]} of {len(history)})")
    return {
        "method": method,
        "kind": "network",
        "mode": config.mode,
        "head": config.head,
        "metric": primary,
        primary: test_metrics[primary],
        "test": test_metrics,
        "validation": best[3],
        "selected_epoch": best[1],
        "epochs_run": len(history),
        "epochs_planned": epochs,
        "stopped_early": len(history) < epochs,
        "pretrained": pretrain_record,
        "device": str(device),
    }
