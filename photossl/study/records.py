"""What a study plan is made of (grid cells, pretraining jobs, the plan itself) and how its records are hashed and
written; :mod:`photossl.study.plan` builds the plan."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photossl import files
from photossl.data.storage import file_sha256  # noqa: F401 - the study's records name their files by it
from photossl.study.config import StudyConfig


@dataclass(frozen=True)
class Cell:
    """One grid cell: a method label, a label budget and a seed."""

    label: str
    budget: int
    seed: int

    @property
    def id(self) -> str:
        return f"{self.label}__b{self.budget}__s{self.seed}"


@dataclass
class PretrainJob:
    """One pretraining run shared by every label whose pretraining settings resolve to ``config`` (a resolved
    :class:`~photossl.training.PretrainConfig`; for a cheap-label run a
    :class:`~photossl.study.cheap_label.RoughLabelRun`)."""

    name: str
    config: Any
    labels: list[str] = field(default_factory=list)
    status: str = "pending"
    error: str | None = None
    wall_time_s: float | None = None
    checkpoint_sha256: str | None = None
    kind: str = "pretrain"  # or "cheap-label": a supervised run on rough labels (photossl.study.cheap_label)


@dataclass
class StudyPlan:
    """Everything resolved before anything runs, so that a bad config fails at once."""

    config: StudyConfig
    out: Path
    data_dir: Path | None  # the photonic dataset folder the cells read; None on the vision track
    jobs: dict[str, PretrainJob]  # by job name
    job_of: dict[str, str]  # label -> job name
    cell_configs: dict[Cell, Any]  # each cell's FinetuneConfig (VisionFinetuneConfig on the vision track)
    cells: list[Cell]

    def shared_config(self):
        """One cell's config, for what every cell shares (the vision dataset, its size and split)."""
        return next(iter(self.cell_configs.values()))

    @property
    def pretrain_dir(self) -> Path:
        """Folder of the pretraining runs (:func:`pretrain_root`)."""
        return pretrain_root(self.config, self.out)

    def describe_data(self) -> str:
        """The data in one phrase, for logs and records."""
        if self.data_dir is not None:
            return str(self.data_dir)
        size = f" at {self.config.image_size} px" if self.config.image_size else ""
        return f"vision dataset {self.config.dataset}{size}"


def pretrain_root(config: StudyConfig, out: Path) -> Path:
    """The study's pretraining runs: ``config.pretrain_dir`` (a relative path is taken from the study folder ``out``),
    or ``out/pretrain``."""
    return out / "pretrain" if config.pretrain_dir is None else out / config.pretrain_dir


def cell_finished(record: dict | None, fingerprint: str) -> bool:
    """Whether a cell's record says it finished with the settings of ``fingerprint`` (so it is not run again)."""
    return record is not None and record.get("status") == "ok" and record.get("fingerprint") == fingerprint


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def write_json_atomic(path: Path, record: dict) -> None:
    """A study record: one-space indented JSON, written atomically."""
    files.write_json_atomic(path, record, indent=1)
