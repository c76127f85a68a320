"""Fine-tune an encoder and a regression head on a label budget; select on validation; score the test set once.

The run writes the folder :mod:`~photossl.finetune.outputs` describes; a classical baseline
(:mod:`~photossl.finetune.baselines`) takes the network's place when ``baseline`` is set. A network run killed while
it trains goes on from its latest saved epoch when started again (:mod:`~photossl.finetune.resume`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from photossl.errors import PhotosslError
from photossl.finetune.augment import Augmenter
from photossl.finetune.baselines import fit_classical
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.data import FinetuneData, Part
from photossl.finetune.evaluate import evaluate
from photossl.finetune.network import Regressor, build_head, output_permutation
from photossl.finetune.outputs import (
    MODEL_FILE,
    complete_run,
    prepare_output,
    refuse_finished,
    save_network,
    write_history,
)
from photossl.finetune.predict import FinetunedModel
from photossl.finetune.resume import RESUME_FILE, EpochState, ResumeFile
from photossl.finetune.scaling import TargetScaler
from photossl.finetune.start import INIT_STREAM, start_encoder, start_record
from photossl.finetune.targets import TargetInfo
from photossl.runtime import seeded, select_device, torch_generator, torch_threads

_ORDER_STREAM = 0x0DE5


def finetune(config: FinetuneConfig, out: str | Path, overwrite: bool = False, echo=None,
             dataset=None) -> dict[str, Any]:
    """Fine-tune (or fit the classical baseline) as ``config`` says, write FT = ``out``, return metrics.json's record.

    ``echo``: a function for one-line status messages. ``dataset``: ``config.data`` already opened with
    :func:`photossl.finetune.data.open_target_dataset`, to share it between runs. Raises PhotosslError for bad
    input (a budget larger than the labelled pool, a missing target, an existing run in ``out`` without
    ``overwrite``); nothing in ``out`` changes before the data are read.
    """
    echo = echo or (lambda message: None)
    config.validate()
    started = time.perf_counter()
    refuse_finished(Path(out), overwrite)
    data = FinetuneData(config, keep_raw_eps=config.baseline != "none", dataset=dataset)
    created = not Path(out).exists()
    try:
        out = prepare_output(out, overwrite)
        with torch_threads(config.threads):
            if config.baseline != "none":
                record = fit_classical(config, data, out, echo)
            else:
                record = _finetune_network(config, data, out, select_device(config.device), echo)
            before = record.get("wall_time_before_resume_s", 0.0)
            record = complete_run(config, data, record, out, time.perf_counter() - started + before)
            (out / RESUME_FILE).unlink(missing_ok=True)  # after metrics.json: a kill in between only resumes again
            return record
    except BaseException:
        if created:  # a run that failed before writing anything leaves no empty folder behind
            try:
                Path(out).rmdir()
            except OSError:
                pass
        raise
    finally:
        data.close()


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
    resumed_at_epoch: int = 0
    elapsed_before_s: float = 0.0


def setup_network(config: FinetuneConfig, data: FinetuneData, device: torch.device, echo) -> NetworkSetup:
    """Everything a network run fixes before its first step; the same for a run alone and in an ensemble, so that
    both start from the same weights and draw the same batches."""
    target = data.target
    train, val = data.train(), data.validation()
    in_channels = int(train.images.shape[1])
    encoder, spec, pretrained_method, pretrain_config = start_encoder(config, in_channels)
    pretrain_record = start_record(config, pretrain_config, data, echo)
    start = pretrain_config if isinstance(pretrain_config, FinetunedModel) else None
    with seeded(INIT_STREAM + 1, config.seed):
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
                        torch_generator(_ORDER_STREAM, config.seed), start_best)


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
    best, history = train_network(config, run, device, ResumeFile(out / RESUME_FILE, config, echo=echo))
    return finish_network(config, data, run, best, history, out, device, echo)


def train_network(config: FinetuneConfig, run: NetworkSetup, device: torch.device,
                  resume: ResumeFile | None = None) -> tuple[tuple, list[dict]]:
    """Train one network alone: (best = (validation error, epoch, state, metrics), history rows).

    ``resume``: go on from its saved epoch when it holds one of this run, and save there as training goes
    (:mod:`photossl.finetune.resume`); ``run.resumed_at_epoch`` and ``run.elapsed_before_s`` then say so.
    """
    model, scaler, augment, train, val, target = run.model, run.scaler, run.augment, run.train, run.val, run.target
    optimizer = make_optimizer(config, run.groups)
    n = train.images.shape[0]
    epochs = run.epochs
    schedule = make_schedule(config, optimizer, epochs)
    generator = run.generator
    primary = target.primary_metric

    history: list[dict[str, Any]] = []
    best = run.start_best or (math.inf, 0, None, None)  # (validation error, epoch, model state, validation metrics)
    first = 0
    saved = resume.restore(model, optimizer, schedule, generator) if resume is not None else None
    if saved is not None:
        first, best, history = saved.epoch, saved.best, saved.history
        run.resumed_at_epoch, run.elapsed_before_s = saved.epoch, saved.elapsed_s
    started = time.perf_counter()
    bar = tqdm(range(first, epochs), desc=f"finetune {config.method} b={config.budget} s={config.seed}",
               disable=not config.progress, leave=False, dynamic_ncols=True, initial=first, total=epochs)
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
        if resume is not None and epoch + 1 < epochs:
            resume.save_if_due(EpochState(epoch + 1, best, history, run.elapsed_before_s + time.perf_counter()
                                          - started), model, optimizer, schedule, generator)
    bar.close()
    return best, history


def finish_network(config: FinetuneConfig, data: FinetuneData, run: NetworkSetup, best: tuple,
                   history: list[dict], out: Path, device: torch.device, echo) -> dict[str, Any]:
    """Write the history, restore the selected state, score the test split once, save the model; the record."""
    model, scaler, target = run.model, run.scaler, run.target
    primary = target.primary_metric
    write_history(out / "history.csv", history)
    model.load_state_dict(best[2])
    test = data.test()  # the only read of the test cells, after selection
    test_metrics = evaluate(model, scaler, test, target, device, config.eval_batch_size)
    method = run.method
    save_network(out / MODEL_FILE, config, data, model, run.spec, scaler, method)
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
        **({"resumed_at_epoch": run.resumed_at_epoch, "wall_time_before_resume_s": round(run.elapsed_before_s, 3)}
           if run.resumed_at_epoch else {}),
    }
