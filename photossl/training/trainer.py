"""The pretraining loop shared by the photonics and vision tracks: data order, views, optimisation, monitoring,
checkpoints and resume, on one process or under ``torchrun`` (DistributedDataParallel).

Exact resume: the data order of epoch e is a function of (seed, e) (``DistributedSampler`` semantics), the
augmentation generator, optimiser, schedule, gradient scaler and global RNG states are checkpointed at epoch ends,
so on the CPU a run killed and resumed from its checkpoint ends with the same weights as an uninterrupted run
(BYOL's and MoCo's target networks and MoCo's queue are part of the model; BYOL's momentum schedule is a function of
the global step).

Outputs in RUN: ``config.yaml`` (resolved config), ``run.json`` (config, seed, versions, device, data, status and
results), ``metrics.csv`` / ``metrics.jsonl`` (one row per epoch), ``checkpoint.pt`` (see
:mod:`photossl.training.checkpoint`), ``linear_probe.json`` (vision, at the end), ``tensorboard/`` (optional).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.files import write_json_record, write_yaml_record
from photossl.provenance import software_versions
from photossl.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    atomic_torch_save,
    capture_rng_state,
    load_checkpoint,
    model_state,
    restore_rng_state,
)
from photossl.training.config import (
    MOMENTUM_BASES,
    RESUMABLE_OVERRIDES,
    PretrainConfig,
    make_config,
    resolve_defaults,
)
from photossl.training.methods import PretrainModel, build_model
from photossl.training.probes import encode, knn_accuracy, linear_probe, ridge_probe_error
from photossl.training.run_log import RunLog
from photossl.training.schedule import WarmupCosineSchedule
from photossl.training.sources import TrainingData, load_training_data
from photossl.training.views import PhotonicsViews, VisionViews

_AUGMENT_STREAM = 0xA06


# --------------------------------------------------------------------------------------------- execution context
@dataclass(frozen=True)
class Runtime:
    """Where this process runs: rank and world size (1 without torchrun), device, autocast dtype."""

    rank: int
    world_size: int
    device: torch.device
    autocast_dtype: torch.dtype | None
    owns_process_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def select_device(choice: str, local_rank: int = 0) -> torch.device:
    """'auto': CUDA (the local rank's GPU) when present, else CPU; 'cuda' without a GPU raises PhotosslError."""
    if choice == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if choice == "cuda":
        raise PhotosslError("device 'cuda' was requested but no CUDA GPU is available (use --device cpu or auto)")
    return torch.device("cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA: 'auto' picks bf16 where supported, else fp16; the CPU trains in fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type != "cuda":
        raise PhotosslError(f"precision '{precision}' needs a CUDA device; use precision auto or fp32 on the CPU")
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def setup_runtime(config: PretrainConfig) -> Runtime:
    """Join the process group that ``torchrun`` describes (WORLD_SIZE > 1), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(config.device, local_rank)
    owns = False
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owns = True
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    return Runtime(rank, world, device, autocast_dtype(config.precision, device), owns)


# ----------------------------------------------------------------------------------------------------- data order
def _rank_order(n: int, epoch: int, seed: int, rank: int, world: int) -> torch.Tensor:
    """This rank's share of epoch ``epoch``'s permutation, as DistributedSampler(shuffle, drop_last) draws it."""
    sampler = torch.utils.data.DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


@dataclass(frozen=True)
class BatchPlan:
    """How each rank cuts its batches: ``main`` pretraining cells then ``surrogate`` cells (index ``n_main + j``)."""

    n_main: int
    n_surrogate: int
    main_per_rank: int
    surrogate_per_rank: int
    seed: int
    rank: int
    world: int

    @property
    def steps_per_epoch(self) -> int:
        return (self.n_main // self.world) // self.main_per_rank

    def batches(self, epoch: int) -> list[list[int]]:
        main = _rank_order(self.n_main, epoch, self.seed, self.rank, self.world)
        steps = self.steps_per_epoch
        main = main[: steps * self.main_per_rank].view(steps, self.main_per_rank)
        if self.surrogate_per_rank == 0:
            return main.tolist()
        need, parts, k = steps * self.surrogate_per_rank, [], 0
        while sum(len(p) for p in parts) < need:  # cycle through fresh permutations of the surrogate pool
            parts.append(_rank_order(self.n_surrogate, epoch * 1009 + k, self.seed + 1, self.rank, self.world))
            k += 1
        surrogate = torch.cat(parts)[:need].view(steps, self.surrogate_per_rank) + self.n_main
        return torch.cat([main, surrogate], dim=1).tolist()


def make_batch_plan(config: PretrainConfig, data: TrainingData, runtime: Runtime) -> BatchPlan:
    world = runtime.world_size
    if config.batch_size % world:
        raise PhotosslError(f"batch_size {config.batch_size} is not divisible by the {world} processes")
    per_rank = config.batch_size // world
    n_surrogate = 0 if data.surrogate is None else int(data.surrogate.shape[0])
    surrogate = round(config.surrogate_fraction * per_rank) if n_surrogate else 0
    if n_surrogate and surrogate * world > n_surrogate:
        raise PhotosslError(f"the surrogate set has {n_surrogate} cells, fewer than {surrogate * world} per batch")
    main = per_rank - surrogate
    if main < 1:
        raise PhotosslError(f"surrogate_fraction {config.surrogate_fraction} leaves no dataset cells in a batch")
    if config.spec.care and per_rank % config.care_chunk:
        raise PhotosslError(
            f"the per-process batch {per_rank} is not divisible by care_chunk {config.care_chunk}"
        )
    plan = BatchPlan(int(data.pretrain.shape[0]), n_surrogate, main, surrogate, config.seed, runtime.rank, world)
    if plan.steps_per_epoch < 1:
        raise PhotosslError(
            f"batch_size {config.batch_size} needs more than the {plan.n_main} pretraining samples "
            f"({main * world} dataset samples per step); lower --batch-size"
        )
    return plan


class _Pool(torch.utils.data.Dataset):
    """In-memory samples; a batch is one gather (``__getitems__``), never a loop over samples."""

    def __init__(self, samples: torch.Tensor) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return self.samples.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.samples[index]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self.samples[torch.as_tensor(indices, dtype=torch.long)]


def _batch_identity(batch: torch.Tensor) -> torch.Tensor:
    return batch


def _loader(pool: _Pool, batches: list[list[int]], workers: int, pin: bool) -> Iterator[torch.Tensor]:
    return iter(torch.utils.data.DataLoader(
        pool, batch_sampler=batches, num_workers=workers, collate_fn=_batch_identity, pin_memory=pin
    ))


# ---------------------------------------------------------------------------------------------------- monitoring
def _vision_normaliser(config: PretrainConfig):
    from photossl.vision import normalize_images

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


# ------------------------------------------------------------------------------------------------------ run files


def log_columns(config: PretrainConfig) -> list[str]:
    spec = config.spec
    columns = ["epoch", "step", "lr", "loss", "base"]
    if spec.base == "vicreg":
        columns += ["invariance", "variance", "covariance"]
    if spec.base in MOMENTUM_BASES:
        columns.append("momentum")  # the target network's EMA momentum, averaged over the epoch's steps
    if spec.care:
        columns.append("care")
    if spec.known_group:
        columns.append("gcare")
    if spec.predict:
        columns += ["predict_ce", "predict_acc"]
    columns += ["samples_per_s", "augment_share", "epoch_time_s"]
    columns.append("probe_rel_l1" if config.track == "photonics" else "knn_top1")
    return columns


def _augment_generator(seed: int, rank: int) -> torch.Generator:
    state = np.random.SeedSequence([_AUGMENT_STREAM, seed, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _gather_objects(obj: Any, runtime: Runtime) -> list[Any]:
    if runtime.world_size == 1:
        return [obj]
    out: list[Any] = [None] * runtime.world_size
    dist.all_gather_object(out, obj)
    return out


def resume_config(saved: PretrainConfig, requested: dict[str, Any]) -> PretrainConfig:
    """The config to continue a run with: the saved one, with ``requested`` values applied to the fields that
    may change on resume (:data:`RESUMABLE_OVERRIDES`); any other requested value must equal the saved one."""
    saved_values = config_to_dict(saved)
    changes = {}
    for key, value in requested.items():
        key = key.replace("-", "_")
        if key in RESUMABLE_OVERRIDES:
            changes[key] = value
            continue
        probe = config_to_dict(resolve_defaults(make_config({**saved_values, key: value})))[key]
        if probe != saved_values.get(key):
            raise PhotosslError(
                f"cannot resume with {key} = {value!r}: the run was started with {saved_values.get(key)!r} "
                f"(only {', '.join(sorted(RESUMABLE_OVERRIDES))} may change)"
            )
    return make_config({**saved_values, **changes})


# ----------------------------------------------------------------------------------------------------- the loop
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
    ckpt_file = out / CHECKPOINT_NAME
    checkpoint = None
    if ckpt_file.exists():
        if not resume:
            raise PhotosslError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        checkpoint = load_checkpoint(ckpt_file)
        saved = make_config(checkpoint["config"])
        for key in set(config_to_dict(saved)) - RESUMABLE_OVERRIDES:
            if getattr(saved, key) != getattr(config, key):
                raise PhotosslError(
                    f"cannot resume: config key '{key}' differs from the run's ({getattr(saved, key)!r})"
                )

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    runtime = setup_runtime(config)
    try:
        return _run(config, out, runtime, checkpoint, stop_after_epochs, echo)
    finally:
        if runtime.owns_process_group and dist.is_initialized():
            dist.destroy_process_group()


def _run(config, out, runtime, checkpoint, stop_after_epochs, echo) -> dict[str, Any]:
    device = runtime.device
    if not runtime.is_main:
        echo = lambda message: None  # noqa: E731
    if checkpoint is not None and int(checkpoint["epoch"]) >= config.epochs:
        echo(f"{out} is complete ({checkpoint['epoch']} epochs); pass a larger --epochs to train on")
        record_path = out / "run.json"
        return json.loads(record_path.read_text()) if record_path.exists() else {"status": "complete"}
    if (config.track == "photonics" and config.spec.predict and config.circular_padding
            and config.symmetry_policy().predict == "half_translate" and config.encoder in ("small", "essl")):
        echo("warning: with circular padding the encoder is exactly invariant to half-cell translations, so "
             "predicting them cannot be learnt; use --zero-padding (as the E-SSL reference) or another group")
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    random.seed(config.seed)
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
    generator = _augment_generator(config.seed, runtime.rank)
    pipeline = _pipeline(config, data)
    if runtime.is_main:
        out.mkdir(parents=True, exist_ok=True)

    start_epoch, history = 0, []
    if checkpoint is not None:
        if checkpoint.get("world_size", 1) != runtime.world_size:
            raise PhotosslError(f"the checkpoint was written by {checkpoint.get('world_size')} processes; resume "
                                f"with the same number (this run has {runtime.world_size})")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        schedule.load_state_dict(checkpoint["schedule"])
        scaler.load_state_dict(checkpoint["scaler"])
        restore_rng_state(checkpoint["rng"])
        generator.set_state(checkpoint["rng"]["augment"][runtime.rank])
        start_epoch = int(checkpoint["epoch"])
        history = list(checkpoint.get("resumed_at", []))
        history.append(start_epoch)
        echo(f"resuming {out} after epoch {start_epoch} of {config.epochs}")

    train_model: nn.Module = model
    if runtime.world_size > 1:
        # MoCo's queue is the same on every rank by construction (same seed, gathered keys): no broadcast per step.
        queue_buffers = [name for name, _ in model.named_buffers() if name.startswith("queue.")]
        if queue_buffers:
            nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, queue_buffers)
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    log = RunLog(out, log_columns(config), config.tensorboard) if runtime.is_main else None
    started = time.time()
    run_record = {
        "command": " ".join(sys.argv),
        "status": "running",
        "config": config_to_dict(config),
        "seed": config.seed,
        "versions": software_versions(),
        "device": str(device),
        "precision": str(runtime.autocast_dtype).replace("torch.", "") if runtime.autocast_dtype else "fp32",
        "world_size": runtime.world_size,
        "threads": torch.get_num_threads(),
        "data": data.info,
        "steps_per_epoch": steps_per_epoch,
        "effective_lr": lr,
        "checkpoint": str(out / CHECKPOINT_NAME),
        "resumed_at": history,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if runtime.is_main:
        log.truncate(start_epoch)
        write_yaml_record(out / "config.yaml", config_to_dict(config))
        write_json_record(out / "run.json", run_record)

    pool = _Pool(data.pretrain if data.surrogate is None else torch.cat([data.pretrain, data.surrogate]))
    last_row: dict[str, Any] = {}
    epochs_this_call = 0
    saved = start_epoch  # epochs in the checkpoint on disk
    try:
        for epoch in range(start_epoch, config.epochs):
            last_row = _train_epoch(config, runtime, train_model, model, pool, plan, pipeline, generator, optimizer,
                                    schedule, scaler, epoch, data)
            if runtime.is_main:
                log.append(last_row)
                echo(epoch_line(last_row, config.epochs))
            epochs_this_call += 1
            done = epoch + 1
            interrupted = stop_after_epochs is not None and epochs_this_call >= stop_after_epochs
            if done % config.checkpoint_every == 0 or done == config.epochs or interrupted:
                _save_checkpoint(out, config, runtime, model, optimizer, schedule, scaler, generator, done,
                                 data.in_channels, history)
                saved = done
            if interrupted and done < config.epochs:
                echo(f"stopped after epoch {done} of {config.epochs}; continue with --resume")
                run_record.update(status="interrupted", epochs_completed=done)
                if runtime.is_main:
                    write_json_record(out / "run.json", run_record)
                return run_record
    except KeyboardInterrupt:  # Ctrl-C: the record says so; --resume continues from the last checkpoint
        run_record.update(status="interrupted", epochs_completed=saved,
                          interrupted=datetime.now(timezone.utc).isoformat(timespec="seconds"))
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
        run_record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        run_record["wall_time_s_last_call"] = round(time.time() - started, 3)
        write_json_record(out / "run.json", run_record)
    return run_record


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


def _train_epoch(config, runtime, train_model, model: PretrainModel, pool, plan, pipeline, generator, optimizer,
                 schedule, scaler, epoch, data) -> dict[str, Any]:
    from tqdm.auto import tqdm

    device = runtime.device
    train_model.train()
    batches = plan.batches(epoch)
    sums: dict[str, torch.Tensor] = {}
    augment_time = 0.0
    bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
               disable=not (config.progress and runtime.is_main), dynamic_ncols=True)
    started = time.perf_counter()
    lr = schedule.lr_at(schedule.steps_taken)
    for batch in _loader(pool, batches, config.workers, device.type == "cuda"):
        batch = batch.to(device, non_blocking=True)
        tick = time.perf_counter()
        views = pipeline(batch, generator)
        augment_time += time.perf_counter() - tick
        lr = schedule.step()
        terms = train_step(train_model, views, optimizer, scaler, runtime.autocast_dtype, schedule.steps_taken - 1,
                           schedule.total_steps)
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
        row.update(monitor_metric(config, data, model.encoder, device))
    return row


def _save_checkpoint(out, config, runtime, model, optimizer, schedule, scaler, generator, epoch, in_channels,
                     history) -> None:
    augment_states = _gather_objects(generator.get_state(), runtime)  # collective: every rank calls it
    if not runtime.is_main:
        return
    rng = capture_rng_state()
    rng["augment"] = augment_states
    atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "global_step": schedule.steps_taken,
            "model": model_state(model),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rng,
            "config": config_to_dict(config),
            "in_channels": in_channels,
            "world_size": runtime.world_size,
            "resumed_at": list(history),
            "versions": software_versions(),
        },
        out / CHECKPOINT_NAME,
    )
