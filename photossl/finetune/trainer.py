"""Fine-tune an encoder and a regression head on a label budget; select on validation; score the test set once.

Outputs in FT: ``metrics.json`` (test metrics of the selected model, its validation metrics, selected epoch, wall
time, seeds, budget, method, versions), ``history.csv`` (one row per epoch), ``indices.json`` (the train, validation
and test cells), ``config.yaml``, and the model: ``model.pt`` (network) or ``model.npz`` (classical baseline), which
:func:`photossl.finetune.load_finetuned` and ``photossl predict`` read.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.files import replace_atomically, write_json_record, write_yaml_record
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.data import FinetuneData, Part
from photossl.finetune.predict import FinetunedModel
from photossl.finetune.targets import SYMMETRY_NAME, TargetInfo, score
from photossl.provenance import derive_seed, software_versions

MODEL_FORMAT = "photossl-finetuned"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"
_INIT_STREAM = 0xF17E
_ORDER_STREAM = 0x0DE5


# ------------------------------------------------------------------------------------------------------- the model
class Regressor(nn.Module):
    """Encoder and regression head on standardised targets. Shape: (B, C, N, N) -> (B, out_dim).

    With ``frozen`` the encoder runs without gradients and in eval mode (its batch-norm statistics stay fixed).
    ``output_permutation`` (8, out_dim), for an exactly symmetric encoder and a target that D4 permutes (bands): the
    head runs on the features of each D4 image of the cell and the outputs are mapped back and averaged
    (:func:`photossl.models.orbit_average`), so the output is exactly equivariant rather than invariant.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, frozen: bool = False,
                 output_permutation: torch.Tensor | None = None):
        super().__init__()
        self.encoder, self.head, self.frozen = encoder, head, frozen
        self.register_buffer("output_permutation", output_permutation, persistent=False)
        if frozen:
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> Regressor:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output_permutation is not None:
            from photossl.models import orbit_average

            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
                features = self.encoder.orbit_features(x)  # (8, B, feature_dim)
            outputs = self.head(features.flatten(0, 1)).unflatten(0, features.shape[:2])
            return orbit_average(outputs, self.output_permutation)
        if self.frozen:
            with torch.no_grad():
                features = self.encoder(x)
            return self.head(features)
        return self.head(self.encoder(x))


def encoder_spec(name: str, in_channels: int, circular_padding: bool, exact_symmetry: bool = False) -> dict[str, Any]:
    """Keyword arguments of :func:`photossl.models.build_encoder` (as ``photossl.training`` builds encoders)."""
    kwargs: dict[str, Any] = {"in_channels": int(in_channels)}
    if name in ("essl", "small"):
        kwargs["circular_padding"] = bool(circular_padding)
    if exact_symmetry:
        kwargs["exact_symmetry"] = True
    return {"name": name, "kwargs": kwargs}


def _exact_symmetry(encoder: nn.Module, spec: dict[str, Any], wanted: bool) -> tuple[nn.Module, dict[str, Any]]:
    """A loaded encoder wrapped for exact symmetry when ``wanted`` (same weights); one that already is exactly
    symmetric stays so. The spec records it, so that the saved model is rebuilt the same way."""
    from photossl.models import ExactSymmetryEncoder

    if wanted and not isinstance(encoder, ExactSymmetryEncoder):
        encoder = ExactSymmetryEncoder(encoder)
    if isinstance(encoder, ExactSymmetryEncoder):
        spec["kwargs"]["exact_symmetry"] = True
    return encoder, spec


def output_permutation(encoder: nn.Module, target: TargetInfo) -> torch.Tensor | None:
    """How D4 permutes the flattened target, (8, target.size) long, when ``encoder`` is exactly symmetric and the
    target is 'bands' (k-points permute); None otherwise (invariant targets need no symmetrisation of the head)."""
    from photossl.models import ExactSymmetryEncoder
    from photossl.symmetry import kpoint_permutation_table

    if not isinstance(encoder, ExactSymmetryEncoder) or SYMMETRY_NAME[target.name] != "bands":
        return None
    if target.kpoints is None or target.shape[0] != len(target.kpoints):
        raise PhotosslError(f"exact symmetry on target '{target.variable}' needs its k-points (K, 2) on axis 0")
    table = kpoint_permutation_table(target.kpoints)  # (8, K); raises if the k-set is not closed under D4
    if any(int(row.unique().numel()) != table.shape[1] for row in table):
        raise PhotosslError("exact symmetry on band targets needs k-points that are distinct modulo the reciprocal "
                            "lattice (each D4 operation must permute them)")
    per_k = target.size // table.shape[1]
    return (table[:, :, None] * per_k + torch.arange(per_k)).reshape(table.shape[0], -1)


def build_head(in_dim: int, out_dim: int, kind: str, dims: list[int]) -> nn.Module:
    from photossl.models import RegressionHead

    if kind == "linear":
        return RegressionHead.linear_probe(in_dim, out_dim)
    return RegressionHead(in_dim, out_dim, hidden_dims=tuple(dims))


def _is_finetuned_run(path: str | Path) -> bool:
    """Whether ``path`` is a fine-tuning run folder (its ``model.pt``) or such a file, not a pretraining run."""
    path = Path(path)
    return (path / MODEL_FILE).exists() if path.is_dir() else path.name == MODEL_FILE


def _encoder(config: FinetuneConfig, in_channels: int):
    """(encoder, spec, method label, pretraining config or None): pretrained weights or a freshly initialised one.

    A fine-tuned network as ``pretrained`` (e.g. one trained on rough labels) gives its encoder, and the
    :class:`~photossl.finetune.predict.FinetunedModel` itself in place of the pretraining config.
    """
    from photossl.models import build_encoder

    if config.pretrained is None:
        spec = encoder_spec(config.encoder, in_channels, config.circular_padding, config.exact_symmetry)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's RNG
            torch.manual_seed(derive_seed(_INIT_STREAM, config.seed))
            encoder = build_encoder(spec["name"], **spec["kwargs"])
        return encoder, spec, "supervised", None
    if _is_finetuned_run(config.pretrained):
        from photossl.finetune.predict import load_finetuned

        start = load_finetuned(config.pretrained)
        if start.network is None:
            raise PhotosslError(f"{config.pretrained} holds a classical baseline, which has no encoder to start from")
        spec = encoder_spec(start.config["encoder"], in_channels, start.config["circular_padding"])
        for parameter in start.network.encoder.parameters():  # a frozen-mode run left them fixed
            parameter.requires_grad_(True)
        encoder, spec = _exact_symmetry(start.network.encoder, spec, config.exact_symmetry)
        return encoder, spec, start.method, start
    from photossl.training import load_pretrained

    encoder, pretrain_config = load_pretrained(config.pretrained)
    if pretrain_config.track != "photonics":
        raise PhotosslError(f"{config.pretrained} was pretrained on the {pretrain_config.track} track, not photonics")
    spec = encoder_spec(pretrain_config.encoder, in_channels, pretrain_config.circular_padding)
    # A run pretrained with exact symmetry keeps it; a plain one gains it on request.
    encoder, spec = _exact_symmetry(encoder, spec, config.exact_symmetry)
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

    def symmetrized(self, permutation: torch.Tensor | None) -> TargetScaler:
        """The scaler with its mean averaged over the orbit of ``permutation`` (8, size), so that un-standardising
        keeps an exactly equivariant output equivariant (:func:`output_permutation`); itself when None."""
        if permutation is None:
            return self
        return TargetScaler(self.mean[permutation.to(self.mean.device)].mean(0), self.scale)


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
    for name in (METRICS_FILE, MODEL_FILE, "model.npz", "model.pkl"):  # never leave an old model next to new metrics
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
    created = not Path(out).exists()
    try:
        out = prepare_output(out, overwrite)
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        if config.baseline != "none":
            from photossl.finetune.baselines import fit_classical

            record = fit_classical(config, data, out, echo)
        else:
            record = _finetune_network(config, data, out, select_device(config.device), echo)
        return complete_run(config, data, record, out, time.perf_counter() - started)
    except BaseException:
        if created:  # a run that failed before writing anything leaves no empty folder behind
            try:
                Path(out).rmdir()
            except OSError:
                pass
        raise
    finally:
        data.close()
        torch.set_num_threads(threads)


def complete_run(config: FinetuneConfig, data: FinetuneData, record: dict[str, Any], out: Path,
                 wall_time_s: float) -> dict[str, Any]:
    """Add the run's provenance to ``record`` and write indices.json, config.yaml and, last, metrics.json."""
    record.update(
        budget=config.budget, seed=config.seed, split_seed=data.splits.seed, target=config.target,
        target_variable=data.target.variable, n_train=int(len(data.train_indices)),
        n_validation=int(len(data.splits.validation)), n_test=int(len(data.splits.test)),
        seeds={"budget": config.seed, "init": config.seed, "split": data.splits.seed},
        data=str(data.path), versions=software_versions("scikit-learn"), threads=torch.get_num_threads(),
        wall_time_s=round(wall_time_s, 3),
    )
    write_json_record(out / "indices.json", data.indices_record())
    write_yaml_record(out / "config.yaml", config_to_dict(config))
    write_json_record(out / METRICS_FILE, record)  # last: its presence marks a finished run
    return record


def _start_record(config: FinetuneConfig, start: FinetunedModel, data: FinetuneData, echo) -> dict[str, Any]:
    """The record of a fine-tuned network that this run starts from; warns when it trained on held-out cells.

    Its head (and target scaling) is reused when it regressed the same target with the same head."""
    import json

    trained_on = None
    indices = start.path / "indices.json"
    if indices.exists():
        trained_on = np.asarray(json.loads(indices.read_text())["train"], dtype=np.int64)
    overlap = None
    if trained_on is not None:
        held_out = np.concatenate([data.splits.validation, data.splits.test])
        overlap = int(np.intersect1d(trained_on, held_out).size)
        if overlap:
            echo(f"warning: {overlap} validation/test cells were among the {len(trained_on)} training cells of "
                 f"{config.pretrained}")
    same_head = (start.target.name == data.target.name and start.target.size == data.target.size
                 and start.config.get("head") == config.head
                 and list(start.config.get("head_dims", [])) == list(config.head_dims))
    return {"run": str(config.pretrained), "method": start.method, "kind": "finetuned",
            "epochs": start.config.get("epochs"), "encoder": start.config.get("encoder"),
            "data": start.config.get("data"), "seed": start.config.get("seed"),
            "target_variable": start.target.variable, "head_reused": bool(same_head),
            "held_out_cells_in_pretraining_pool": overlap}


@dataclass
class NetworkSetup:
    """A network run ready to train: the model (on its device), target scaling, augmentation, the arrays it reads,
    the optimiser's parameter groups, its epochs, its batch-order generator, and what the record says about where
    it started. ``start_best``: the selection's starting point, (validation error, 0, state, metrics) when a whole
    network for the same target is the start, else None."""

    model: Regressor
    scaler: TargetScaler
    augment: Augmenter
    train: Part
    val: Part
    target: TargetInfo
    spec: dict[str, Any]
    method: str
    pretrain_record: dict[str, Any] | None
    groups: list[dict[str, Any]]
    epochs: int
    generator: torch.Generator
    start_best: tuple | None


def setup_network(config: FinetuneConfig, data: FinetuneData, device: torch.device, echo) -> NetworkSetup:
    """Everything a network run fixes before its first step; the same for a run alone and in an ensemble, so that
    both start from the same weights and draw the same batches."""
    target = data.target
    train, val = data.train(), data.validation()
    in_channels = int(train.images.shape[1])
    encoder, spec, pretrained_method, pretrain_config = _encoder(config, in_channels)
    pretrain_record = None
    start = pretrain_config if isinstance(pretrain_config, FinetunedModel) else None
    if start is not None:
        pretrain_record = _start_record(config, start, data, echo)
    elif pretrain_config is not None:
        overlap = data.pretraining_overlap(pretrain_config)
        pretrain_record = {"run": str(config.pretrained), "method": pretrain_config.method,
                           "epochs": pretrain_config.epochs, "encoder": pretrain_config.encoder,
                           "data": pretrain_config.data, "seed": pretrain_config.seed,
                           "held_out_cells_in_pretraining_pool": overlap}
        if overlap:
            echo(f"warning: {overlap} validation/test cells were in the pretraining pool of {config.pretrained} "
                 "(unlabelled); store the split in the dataset folder before pretraining to keep them out")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(_INIT_STREAM + 1, config.seed))
        head = build_head(encoder.feature_dim, target.size, config.head, config.head_dims)
    scaler = TargetScaler.fit(train.targets)
    if start is not None and pretrain_record["head_reused"]:  # the same target: go on from the whole network
        head.load_state_dict(start.network.head.state_dict())
        scaler = TargetScaler(start.mean.float(), start.scale)
    permutation = output_permutation(encoder, target)  # bands under exact symmetry: an equivariant head
    scaler = scaler.symmetrized(permutation)
    model = Regressor(encoder, head, frozen=config.mode == "frozen", output_permutation=permutation).to(device)
    groups = [{"params": list(head.parameters()), "lr": config.lr}]
    if config.mode == "full":  # pretrained weights move more gently than a fresh encoder
        scale = config.encoder_lr_scale if pretrain_config is not None else 1.0
        groups.append({"params": list(encoder.parameters()), "lr": config.lr * scale})
    start_best = None
    if start is not None and pretrain_record["head_reused"]:
        # A whole network for the same target is already a model: selection may keep it (epoch 0) when the
        # labels at hand cannot improve it on the validation cells.
        metrics = evaluate(model, scaler, val, target, device, config.eval_batch_size)
        start_best = (metrics[target.primary_metric], 0,
                      {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, metrics)
    return NetworkSetup(model, scaler, Augmenter(config.augment, target), train, val, target, spec,
                        config.label or pretrained_method, pretrain_record, groups,
                        config.epochs_for(train.images.shape[0]),
                        torch.Generator().manual_seed(derive_seed(_ORDER_STREAM, config.seed)), start_best)


def make_optimizer(config: FinetuneConfig, groups: list[dict[str, Any]]):
    """Adam on the parameter ``groups`` of :func:`setup_network`."""
    return torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(config: FinetuneConfig, optimizer: torch.optim.Optimizer, epochs: int):
    """The per-epoch learning-rate schedule of ``optimizer`` (None: constant)."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    return None


def _finetune_network(config: FinetuneConfig, data: FinetuneData, out: Path, device: torch.device,
                      echo) -> dict[str, Any]:
    run = setup_network(config, data, device, echo)
    best, history = train_network(config, run, device)
    return finish_network(config, data, run, best, history, out, device, echo)


def train_network(config: FinetuneConfig, run: NetworkSetup, device: torch.device) -> tuple[tuple, list[dict]]:
    """Train one network alone: (best = (validation error, epoch, state, metrics), history rows)."""
    from tqdm.auto import tqdm

    model, scaler, augment, train, val, target = run.model, run.scaler, run.augment, run.train, run.val, run.target
    optimizer = make_optimizer(config, run.groups)
    n = train.images.shape[0]
    epochs = run.epochs
    schedule = make_schedule(config, optimizer, epochs)
    generator = run.generator
    primary = target.primary_metric

    history: list[dict[str, Any]] = []
    best = run.start_best or (math.inf, 0, None, None)  # (validation error, epoch, model state, validation metrics)
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
    return best, history


def finish_network(config: FinetuneConfig, data: FinetuneData, run: NetworkSetup, best: tuple,
                   history: list[dict], out: Path, device: torch.device, echo) -> dict[str, Any]:
    """Write the history, restore the selected state, score the test split once, save the model; the record."""
    from photossl.training.checkpoint import atomic_torch_save

    model, scaler, target = run.model, run.scaler, run.target
    primary = target.primary_metric
    write_history(out / "history.csv", history)
    model.load_state_dict(best[2])
    test = data.test()  # the only read of the test cells, after selection
    test_metrics = evaluate(model, scaler, test, target, device, config.eval_batch_size)
    method = run.method
    atomic_torch_save(
        {
            "format": MODEL_FORMAT,
            "kind": "network",
            "encoder": run.spec,
            "head": {"kind": config.head, "in_dim": model.encoder.feature_dim, "out_dim": target.size,
                     "dims": list(config.head_dims)},
            "state": model.state_dict(),
            "target_mean": scaler.mean.cpu(),
            "target_scale": scaler.scale,
            "target": target.as_record(),
            "normalisation": list(data.normalisation),
            "image_size": data.image_size,
            "eps_range": list(data.eps_range()),
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
        "epochs_planned": run.epochs,
        "stopped_early": len(history) < run.epochs,
        "pretrained": run.pretrain_record,
        "device": str(device),
    }
