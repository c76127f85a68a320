"""Checkpoints of a pretraining run: what one holds, saving and restoring it with every random state an exact resume
needs, and :func:`load_pretrained` for code that only wants the trained encoder.

A run folder RUN holds ``RUN/checkpoint.pt`` (the latest state, written every ``checkpoint_every`` epochs and at
the end) with keys: format, epoch (epochs completed), global_step, model (state dict of the
:class:`~photossl.training.methods.PretrainModel`: ``encoder.*``, ``projector.*``, ``predictor.*``; BYOL and MoCo
add ``target_encoder.*``, ``target_projector.*``, BYOL ``byol_predictor.*``, MoCo ``queue.keys`` and
``queue.pointer``; ``load_pretrained`` returns the online ``encoder``), optimizer,
schedule, scaler, rng (torch CPU/CUDA, numpy, python ``random``, and the per-rank augmentation generators;
data order is a function of (seed, epoch)), config (the resolved config as a plain dict), in_channels, versions.
Everything is stored as tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from photossl import distributed
from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.files import atomic_torch_save, load_torch_file
from photossl.provenance import software_versions
from photossl.runtime import Runtime
from photossl.training.config import PretrainConfig, make_config
from photossl.training.methods import build_encoder_from_config
from photossl.training.schedule import WarmupCosineSchedule

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "photossl-pretrain-checkpoint"


@dataclass
class LoopState:
    """What a pretraining loop changes and a checkpoint holds: the model (unwrapped), optimiser, schedule, gradient
    scaler and this rank's augmentation generator."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosineSchedule
    scaler: torch.amp.GradScaler
    generator: torch.Generator


def capture_rng_state() -> dict[str, Any]:
    """Torch (CPU and every CUDA device), numpy and Python ``random`` states as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(run_or_file: str | Path) -> Path:
    """``RUN/checkpoint.pt`` for a run folder; a file path is returned as is."""
    path = Path(run_or_file)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(run_or_file: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict of a run folder or checkpoint file; a missing or foreign file raises PhotosslError."""
    path = checkpoint_path(run_or_file)
    if not path.exists():
        raise PhotosslError(f"no checkpoint at {path}")
    remedy = ("pass a run folder written by photossl pretrain (if it is damaged, delete the file and rerun the "
              "pretraining)")
    return load_torch_file(path, "photossl pretraining checkpoint", remedy, map_location, CHECKPOINT_FORMAT)


def load_pretrained(run_or_file: str | Path, map_location: str | torch.device = "cpu"):
    """``(encoder, config)`` of a pretraining run: the encoder in eval mode with its trained weights, and the
    run's resolved :class:`~photossl.training.config.PretrainConfig`.

    ``run_or_file``: a run folder (its ``checkpoint.pt``) or a checkpoint file. Encoder inputs are what the run
    trained on: photonic cells (B, 1, N, N) holding (ε − 1)/19, or vision images standardised with the dataset's
    mean and std (:func:`photossl.vision.normalize_images`).
    """
    payload = load_checkpoint(run_or_file, map_location)
    config = make_config(payload["config"])
    encoder = build_encoder_from_config(config, int(payload["in_channels"]))
    prefix = "encoder."
    state = {k[len(prefix):]: v for k, v in payload["model"].items() if k.startswith(prefix)}
    encoder.load_state_dict(state)
    encoder.to(map_location)
    encoder.eval()
    return encoder, config


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict of the underlying model of a (possibly DistributedDataParallel-wrapped) module."""
    return getattr(model, "module", model).state_dict()


def save_checkpoint(out: Path, config: PretrainConfig, runtime: Runtime, state: LoopState, epoch: int,
                    in_channels: int, history: list[int]) -> None:
    """Write ``out/checkpoint.pt`` after ``epoch`` epochs (rank 0; every rank must call it, as the augmentation
    generators' states are gathered from all of them)."""
    augment_states = distributed.gather_objects(state.generator.get_state())
    if not runtime.is_main:
        return
    rng = capture_rng_state()
    rng["augment"] = augment_states
    atomic_torch_save(
        {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "global_step": state.schedule.steps_taken,
            "model": model_state(state.model),
            "optimizer": state.optimizer.state_dict(),
            "schedule": state.schedule.state_dict(),
            "scaler": state.scaler.state_dict(),
            "rng": rng,
            "config": config_to_dict(config),
            "in_channels": in_channels,
            "world_size": runtime.world_size,
            "resumed_at": list(history),
            "versions": software_versions(),
        },
        out / CHECKPOINT_NAME,
    )


def restore_checkpoint(checkpoint: dict[str, Any], runtime: Runtime, state: LoopState) -> tuple[int, list[int]]:
    """Load ``checkpoint`` into ``state`` and the global random generators; returns (epochs done, the epochs at which
    the run was resumed, this one included)."""
    if checkpoint.get("world_size", 1) != runtime.world_size:
        raise PhotosslError(f"the checkpoint was written by {checkpoint.get('world_size')} processes; resume "
                            f"with the same number (this run has {runtime.world_size})")
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.schedule.load_state_dict(checkpoint["schedule"])
    state.scaler.load_state_dict(checkpoint["scaler"])
    restore_rng_state(checkpoint["rng"])
    state.generator.set_state(checkpoint["rng"]["augment"][runtime.rank])
    start_epoch = int(checkpoint["epoch"])
    return start_epoch, [*checkpoint.get("resumed_at", []), start_epoch]
