"""Resume a network fine-tuning run after a kill: ``FT/resume.pt`` holds the state at the end of the latest saved
epoch, and a run started again into the same folder with the same settings goes on from there.

The file holds everything the next epoch depends on: the weights and batch-norm statistics, Adam's state, the
learning-rate schedule, the batch-order and augmentation generator, torch's global generator, the selection's best
state so far and the history. A resumed run on the CPU therefore ends with the weights, history and metrics an
uninterrupted run would have had, bit for bit. The file is written atomically, at most once per ``every_s`` seconds of
training (the long epochs of exactly symmetric networks are checkpointed every epoch, a seconds-long run not at all),
and removed once the run's ``metrics.json`` is written. A file written under other settings (``settings`` of the
config: execution keys such as threads or device may differ) or that cannot be read is ignored, with a message.
Members of a stacked ensemble write and read the same file (:mod:`photossl.finetune.member_resume`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from photossl.config import settings
from photossl.errors import PhotosslError
from photossl.files import atomic_torch_save, load_torch_file

RESUME_FILE = "resume.pt"
RESUME_FORMAT = "photossl-finetune-resume"
# Seconds of training between two saves: a save costs well under a second, an epoch of an exactly symmetric
# network on one CPU core a minute or more.
RESUME_EVERY_S = 60.0


@dataclass
class EpochState:
    """Where a run stands after ``epoch`` epochs: the selection's best (validation error, epoch, state, metrics),
    the history rows and the training seconds spent so far."""

    epoch: int
    best: tuple
    history: list[dict[str, Any]]
    elapsed_s: float


@dataclass
class ResumeFile:
    """``path`` (FT/resume.pt) of a run with ``config``'s settings, saved at most every ``every_s`` seconds."""

    path: Path
    config: Any  # FinetuneConfig
    every_s: float | None = None  # None: RESUME_EVERY_S
    echo: Callable[[str], None] = print
    _last_save: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if self.every_s is None:
            self.every_s = RESUME_EVERY_S

    def restore(self, model, optimizer, schedule, generator: torch.Generator) -> EpochState | None:
        """Load the saved state into the run's objects and return where it stands; None (nothing changed) when
        there is no file, or one of other settings or unreadable."""
        if not self.path.exists():
            return None
        try:
            saved = load_torch_file(self.path, "fine-tuning resume file", "starting from epoch 0",
                                    file_format=RESUME_FORMAT)
        except PhotosslError as err:
            self.echo(f"ignoring {err}")
            return None
        if saved.get("settings") != settings(self.config):
            self.echo(f"ignoring {self.path}: it was written under other settings; starting from epoch 0")
            return None
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(saved["schedule"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        best = tuple(saved["best"])
        self.echo(f"resuming {self.path.parent} after epoch {saved['epoch']} (best {best[0]:.4g} at epoch {best[1]})")
        self._last_save = time.perf_counter()
        return EpochState(int(saved["epoch"]), best, list(saved["history"]), float(saved["elapsed_s"]))

    def due(self) -> bool:
        """Whether ``every_s`` seconds have passed since the last save (or the restore)."""
        return time.perf_counter() - self._last_save >= self.every_s

    def save_if_due(self, state: EpochState, model, optimizer, schedule, generator: torch.Generator) -> None:
        """Save ``state`` and the run's objects when ``every_s`` seconds have passed since the last save."""
        if self.due():
            self.save(state, model.state_dict(), optimizer.state_dict(),
                      None if schedule is None else schedule.state_dict(), generator)

    def save(self, state: EpochState, model_state: dict[str, torch.Tensor], optimizer_state: dict[str, Any],
             schedule_state: dict[str, Any] | None, generator: torch.Generator) -> None:
        """Write the file now: ``state``, the model's and a ``torch.optim.Adam``'s state dicts, the schedule's."""
        atomic_torch_save({
            "format": RESUME_FORMAT,
            "settings": settings(self.config),
            "epoch": state.epoch,
            "model": {k: v.detach().cpu() for k, v in model_state.items()},
            "optimizer": optimizer_state,
            "schedule": schedule_state,
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "best": list(state.best),
            "history": state.history,
            "elapsed_s": state.elapsed_s,
        }, self.path)
        self._last_save = time.perf_counter()
