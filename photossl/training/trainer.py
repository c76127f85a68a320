"""The pretraining loop shared by the photonics and vision tracks, on one process or under ``torchrun``
(DistributedDataParallel): the method's views, optimisation, monitoring and checkpoints, epoch after epoch.

Exact resume: the data order of epoch e is a function of (seed, e) (:mod:`~photossl.training.batches`), and the
augmentation generator, optimiser, schedule, gradient scaler and global RNG states are checkpointed at epoch ends
(:mod:`~photossl.training.checkpoint`), so on the CPU a run killed and resumed from its checkpoint ends with the same
weights as an uninterrupted run (BYOL's and MoCo's target networks and MoCo's queue are part of the model; BYOL's
momentum schedule is a function of the global step).

Outputs in RUN: ``config.yaml`` (resolved config), ``run.json`` (config, seed, versions, device, data, status and
results), ``metrics.csv`` / ``metrics.jsonl`` (one row per epoch, :mod:`~photossl.training.run_log`),
``checkpoint.pt``, ``linear_probe.json`` (vision, at the end), ``tensorboard/`` (optional).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.files import write_json_record, write_yaml_record
from photossl.provenance import software_versions
from photossl.runtime import (
    Runtime,
    precision_name,
    process_runtime,
    seed_globals,
    torch_threads,
    wide_torch_generator,
)
from photossl.training.batches import BatchPlan, Pool, load_batches, make_batch_plan
from photossl.training.checkpoint import CHECKPOINT_NAME, LoopState, restore_checkpoint, save_checkpoint
from photossl.training.config import PretrainConfig, resolve_defaults
from photossl.training.methods import build_model, method_of
from photossl.training.monitor import epoch_line, final_linear_probe, monitor_metric
from photossl.training.resume import checkpoint_to_resume
from photossl.training.run_log import RunLog, log_columns
from photossl.training.schedule import WarmupCosineSchedule
from photossl.training.sources import TrainingData, load_training_data
from photossl.training.views import PhotonicsViews, VisionViews

_AUGMENT_STREAM = 0xA06


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pretrain(
    config: PretrainConfig,
    out: str | Path,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    echo=None,
) -> dict[str, Any]:
    """Pretrain as ``config`` says, writing into folder ``out``; returns the run summary (also in run.json).

    ``resume``: continue from ``out/checkpoint.pt`` if it exists (else start afresh); without it an existing
    checkpoint in ``out`` is an error. ``stop_after_epochs``: leave after that many epochs of this call, as an
    interruption would (the checkpoint allows a resume). ``echo``: a function for one-line status messages.
    Under ``torchrun`` every rank calls this; rank 0 writes the files.
    """
    echo = echo or (lambda message: None)
    config = resolve_defaults(config)
    out = Path(out)
    checkpoint = checkpoint_to_resume(out, config, resume)
    with torch_threads(config.threads), process_runtime(config.device, config.precision) as runtime:
        return _run(config, out, runtime, checkpoint, stop_after_epochs, echo)


def _run(config, out, runtime: Runtime, checkpoint, stop_after_epochs, echo) -> dict[str, Any]:
    device = runtime.device
    if not runtime.is_main:
        echo = lambda message: None  # noqa: E731
    if checkpoint is not None and int(checkpoint["epoch"]) >= config.epochs:
        echo(f"{out} is complete ({checkpoint['epoch']} epochs); pass a larger --epochs to train on")
        record_path = out / "run.json"
        return json.loads(record_path.read_text()) if record_path.exists() else {"status": "complete"}
    for warning in method_of(config.spec).warnings(config):
        echo(warning)
    seed_globals(config.seed)
    data = load_training_data(config)
    model = build_model(config, data.in_channels)
    if config.sync_batchnorm and runtime.world_size > 1:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    plan = make_batch_plan(config, data, runtime)
    steps_per_epoch = plan.steps_per_epoch
    lr = config.lr * (config.batch_size / 256 if config.lr_scaling == "linear" else 1.0)
    optimizer = _optimizer(config, model, lr)
    schedule = WarmupCosineSchedule(optimizer, config.epochs * steps_per_epoch,
                                    round(config.warmup_epochs * steps_per_epoch), lr, lr * config.final_lr_ratio)
    scaler = torch.amp.GradScaler("cuda", enabled=runtime.autocast_dtype == torch.float16)
    state = LoopState(model, optimizer, schedule, scaler, wide_torch_generator(_AUGMENT_STREAM, config.seed,
                                                                                runtime.rank))
    pipeline = _pipeline(config, data)
    if runtime.is_main:
        out.mkdir(parents=True, exist_ok=True)

    start_epoch, history = 0, []
    if checkpoint is not None:
        start_epoch, history = restore_checkpoint(checkpoint, runtime, state)
        echo(f"resuming {out} after epoch {start_epoch} of {config.epochs}")

    train_model = _parallel(model, runtime)
    log = RunLog(out, log_columns(config), config.tensorboard) if runtime.is_main else None
    started = time.time()
    run_record = {
        "command": " ".join(sys.argv),
        "status": "running",
        "config": config_to_dict(config),
        "seed": config.seed,
        "versions": software_versions(),
        "device": str(device),
        "precision": precision_name(runtime.autocast_dtype),
        "world_size": runtime.world_size,
        "threads": torch.get_num_threads(),
        "data": data.info,
        "steps_per_epoch": steps_per_epoch,
        "effective_lr": lr,
        "checkpoint": str(out / CHECKPOINT_NAME),
        "resumed_at": history,
        "started": _now(),
    }
    if runtime.is_main:
        log.truncate(start_epoch)
        write_yaml_record(out / "config.yaml", config_to_dict(config))
        write_json_record(out / "run.json", run_record)

    pool = Pool(data.pretrain if data.surrogate is None else torch.cat([data.pretrain, data.surrogate]))
    last_row: dict[str, Any] = {}
    epochs_this_call = 0
    saved = start_epoch  # epochs in the checkpoint on disk
    try:
        for epoch in range(start_epoch, config.epochs):
            last_row = _train_epoch(config, runtime, train_model, state, pool, plan, pipeline, epoch, data)
            if runtime.is_main:
                log.append(last_row)
                echo(epoch_line(last_row, config.epochs))
            epochs_this_call += 1
            done = epoch + 1
            interrupted = stop_after_epochs is not None and epochs_this_call >= stop_after_epochs
            if done % config.checkpoint_every == 0 or done == config.epochs or interrupted:
                save_checkpoint(out, config, runtime, state, done, data.in_channels, history)
                saved = done
            if interrupted and done < config.epochs:
                echo(f"stopped after epoch {done} of {config.epochs}; continue with --resume")
                run_record.update(status="interrupted", epochs_completed=done)
                if runtime.is_main:
                    write_json_record(out / "run.json", run_record)
                return run_record
    except KeyboardInterrupt:  # Ctrl-C: the record says so; --resume continues from the last checkpoint
        run_record.update(status="interrupted", epochs_completed=saved, interrupted=_now())
        if runtime.is_main:
            write_json_record(out / "run.json", run_record)
            echo(f"interrupted; the checkpoint holds {saved} of {config.epochs} epochs, continue with --resume")
        raise
    finally:
        if log is not None:
            log.close()

    run_record.update(status="complete", epochs_completed=config.epochs)
    if last_row:
        run_record["last_epoch"] = last_row
    if runtime.is_main:
        if data.monitor_kind == "knn":
            probe = final_linear_probe(config, data, model.encoder, device)
            run_record["linear_probe"] = probe
            write_json_record(out / "linear_probe.json", probe)
            echo(f"linear probe accuracy {probe['mean']:.4f} ± {probe['std']:.4f} over seeds {probe['seeds']}")
        elif data.monitor_kind == "ridge":
            run_record["final_probe_rel_l1"] = monitor_metric(config, data, model.encoder, device)["probe_rel_l1"]
        run_record["finished"] = _now()
        run_record["wall_time_s_last_call"] = round(time.time() - started, 3)
        write_json_record(out / "run.json", run_record)
    return run_record


def _parallel(model: nn.Module, runtime: Runtime) -> nn.Module:
    """``model`` itself on one process, else wrapped in DistributedDataParallel."""
    if runtime.world_size == 1:
        return model
    # MoCo's queue is the same on every rank by construction (same seed, gathered keys): no broadcast per step.
    queue_buffers = [name for name, _ in model.named_buffers() if name.startswith("queue.")]
    if queue_buffers:
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, queue_buffers)
    device = runtime.device
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _optimizer(config: PretrainConfig, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)


def _pipeline(config: PretrainConfig, data: TrainingData):
    if config.track == "photonics":
        return PhotonicsViews(config.symmetry_policy(), config.spec, config.care_chunk, config.care_views,
                              config.care_pairing, config.predict_views)
    return VisionViews(config.dataset, data.image_size, config.spec, config.care_chunk, config.care_views,
                       config.care_pairing, config.predict_views)


def train_step(
    train_model: nn.Module,
    views,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    autocast: torch.dtype | None = None,
    step: int = 0,
    total_steps: int | None = None,
) -> dict[str, torch.Tensor]:
    """One optimisation step on prepared views; returns the detached loss terms.

    Then the model's ``after_step(step, total_steps)`` hook runs (BYOL's and MoCo's target networks follow the
    online ones; ``step`` is this step's 0-based index in the run, ``total_steps`` the run's length) and what it
    returns (e.g. 'momentum') joins the terms.
    """
    device_type = views.view1.device.type
    with torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
        terms = train_model(views)
    loss = terms["loss"]
    if not torch.isfinite(loss):
        raise PhotosslError(f"the loss became {float(loss)}; lower the learning rate or check the data")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    after_step = getattr(getattr(train_model, "module", train_model), "after_step", None)
    logged = after_step(step, total_steps) if after_step is not None else {}
    terms = {k: v.detach() for k, v in terms.items()}
    terms.update({k: torch.tensor(v, device=loss.device) for k, v in logged.items()})
    return terms


def _train_epoch(config: PretrainConfig, runtime: Runtime, train_model: nn.Module, state: LoopState, pool: Pool,
                 plan: BatchPlan, pipeline, epoch: int, data: TrainingData) -> dict[str, Any]:
    device, schedule = runtime.device, state.schedule
    train_model.train()
    batches = plan.batches(epoch)
    sums: dict[str, torch.Tensor] = {}
    augment_time = 0.0
    bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
               disable=not (config.progress and runtime.is_main), dynamic_ncols=True)
    started = time.perf_counter()
    lr = schedule.lr_at(schedule.steps_taken)
    for batch in load_batches(pool, batches, config.workers, device.type == "cuda"):
        batch = batch.to(device, non_blocking=True)
        tick = time.perf_counter()
        views = pipeline(batch, state.generator)
        augment_time += time.perf_counter() - tick
        lr = schedule.step()
        terms = train_step(train_model, views, state.optimizer, state.scaler, runtime.autocast_dtype,
                           schedule.steps_taken - 1, schedule.total_steps)
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value.float()
        bar.update(1)
        if runtime.is_main and config.progress and bar.n % 10 == 1:  # reading the loss synchronises a GPU
            bar.set_postfix(loss=f"{float(terms['loss']):.4f}", refresh=False)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    keys = sorted(sums)
    means = torch.stack([sums[k] for k in keys]) / len(batches)
    if runtime.world_size > 1:
        dist.all_reduce(means)
        means /= runtime.world_size
    row: dict[str, Any] = {"epoch": epoch + 1, "step": schedule.steps_taken, "lr": lr}
    row.update({k: float(v) for k, v in zip(keys, means.cpu())})
    samples = len(batches) * len(batches[0]) * runtime.world_size
    row["samples_per_s"] = samples / elapsed if elapsed > 0 else None
    row["augment_share"] = augment_time / elapsed if elapsed > 0 else None
    row["epoch_time_s"] = elapsed
    last = epoch + 1 == config.epochs
    if runtime.is_main and config.probe_every and ((epoch + 1) % config.probe_every == 0 or last):
        row.update(monitor_metric(config, data, state.model.encoder, device))
    return row
