"""The plan of a study: its grid cells, its pretraining runs keyed by their settings, where everything lives in
STUDY, and the data it reads (generated, or an external dataset seen through a view that holds the study's split).

Everything is resolved before anything runs, so that a bad config fails at once with one line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from photossl import files
from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.finetune import make_finetune_config
from photossl.study.config import StudyConfig
from photossl.training import make_config, resolve_defaults

# Keys that steer execution only: changing them neither moves a pretraining run nor invalidates a finished cell.
_PRETRAIN_EXECUTION = ("device", "workers", "threads", "checkpoint_every", "tensorboard", "progress", "probe_every",
                       "precision")
_FINETUNE_EXECUTION = ("device", "threads", "progress", "eval_batch_size")


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
    """One pretraining run shared by every label whose pretraining settings resolve to ``values``."""

    name: str
    values: dict
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
    data_dir: Path
    jobs: dict[str, PretrainJob]  # by job name
    job_of: dict[str, str]  # label -> job name
    finetune_values: dict[str, dict]  # label -> finetune keys (without data, budget, seed, pretrained)
    cells: list[Cell]


def _sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    from photossl.data.storage import file_sha256

    return file_sha256(path)


def write_json_atomic(path: Path, record: dict) -> None:
    """A study record: one-space indented JSON, written atomically."""
    files.write_json_atomic(path, record, indent=1)


# ------------------------------------------------------------------------------------------------------ planning
def _data_source(config: StudyConfig, data: str | Path | None) -> str | None:
    source = str(data) if data is not None else config.data
    if source is not None and (source == "bundled" or source.startswith("bundled:")):
        from photossl.data import bundled_dataset_path

        name = source.partition(":")[2] or "sibcl-p1-tm-512"
        return str(bundled_dataset_path(name))
    return source


def plan_study(config: StudyConfig, out: str | Path, data: str | Path | None = None) -> StudyPlan:
    """Resolve data location, pretraining runs, fine-tuning settings and the grid; raise PhotosslError on bad input."""
    config.validate()
    out = Path(out)
    source = _data_source(config, data)
    if source is None and config.generate is None:
        raise PhotosslError("the study needs data: set 'data' (a dataset folder or 'bundled') or 'generate', "
                            "or pass --data DIR")
    if source is not None:
        if not Path(source).is_dir():
            raise PhotosslError(f"dataset folder not found: {source}")
        sizes_given = config.n_test is not None or config.n_validation is not None
        data_dir = out / "dataset" if sizes_given else Path(source)
    else:
        data_dir = out / "data"

    jobs: dict[str, PretrainJob] = {}
    job_of: dict[str, str] = {}
    finetune_values: dict[str, dict] = {}
    for label in config.methods:
        kind = config.method_kind(label)
        options = config.options(label)
        values = {"device": config.device, "progress": False, **config.finetune, **options.finetune}
        if config.threads is not None:
            values.setdefault("threads", config.threads)
        if kind == "classical":
            values["baseline"] = config.method_name(label)
        try:  # reject bad keys now, with placeholders for what each cell sets
            make_finetune_config({**values, "data": str(data_dir), "label": label,
                                  **({"pretrained": "RUN"} if kind in ("pretrained", "cheap-label") else {})})
        except PhotosslError as err:
            raise PhotosslError(f"method '{label}': {err}") from None
        finetune_values[label] = values
        if kind == "cheap-label":  # its "pretraining": the same network trained on rough labels of the pool
            from photossl.study.cheap_label import plan_cheap_label

            job = plan_cheap_label(config, label, values, source, data_dir)
            jobs.setdefault(job.name, job).labels.append(label)
            job_of[label] = job.name
            continue
        if kind != "pretrained":
            continue
        pre = {"track": "photonics", "device": config.device, "progress": config.progress, **config.pretrain,
               **options.pretrain, "method": config.method_name(label), "data": str(data_dir),
               "split_seed": config.split_seed}
        if config.threads is not None:
            pre.setdefault("threads", config.threads)
        try:
            resolved = config_to_dict(resolve_defaults(make_config(pre)))
        except PhotosslError as err:
            raise PhotosslError(f"method '{label}': {err}") from None
        key = _sha({k: v for k, v in resolved.items() if k not in _PRETRAIN_EXECUTION})[:8]
        name = f"{resolved['method']}-{key}"
        jobs.setdefault(name, PretrainJob(name, pre)).labels.append(label)
        job_of[label] = name
    # Budget-major order: every method's small-budget cells finish first, so an early look compares like with like.
    cells = [Cell(label, b, s) for b in config.all_budgets() for s in config.seeds for label in config.methods
             if b in config.budgets_of(label)]
    check_budgets(config, source)
    return StudyPlan(config, out, data_dir, jobs, job_of, finetune_values, cells)


def _planned_cell_count(config: StudyConfig, source: str | None) -> int | None:
    """The number of cells the study's data will hold, read from a manifest or the generate settings (no cell is
    read); None when that is not known yet."""
    if source is None:
        from photossl.data import preset_config

        values = dict(config.generate)
        return int(preset_config(values.pop("preset", "sibcl-p1"), **values).n_cells)
    from photossl.data.storage import read_manifests

    counts = {int(manifest["n_cells"]) for manifest in read_manifests(source).values()}
    return counts.pop() if len(counts) == 1 else None


def check_budgets(config: StudyConfig, source: str | None) -> None:
    """Refuse a budget larger than the labelled pool before anything runs or is written (also for ``--dry-run``)."""
    n_cells = _planned_cell_count(config, source)
    if n_cells is None:
        return
    sizes = {k: v for k, v in (("n_test", config.n_test), ("n_validation", config.n_validation)) if v is not None}
    if sizes or source is None:
        from photossl.data.splits import make_splits

        splits = make_splits(n_cells, config.split_seed, **sizes)
    else:
        from photossl.finetune import resolve_splits

        splits = resolve_splits(source, n_cells, config.split_seed)
    largest = max(config.all_budgets())
    if largest > len(splits.labelled):
        raise PhotosslError(f"budget {largest} exceeds the labelled pool of {len(splits.labelled)} cells "
                            f"(split sizes {splits.sizes}); lower 'budgets' or enlarge the dataset")


# ----------------------------------------------------------------------------------------------------------- data
def _make_view(source: Path, view: Path) -> None:
    """``view`` reads the dataset ``source`` through symlinks, so the study can store its split there."""
    view.mkdir(parents=True, exist_ok=True)
    for manifest in source.glob("manifest*.json"):
        link = view / manifest.name
        if not link.exists():
            link.symlink_to(manifest.resolve())
    chunks = view / "chunks"
    if not chunks.exists():
        chunks.symlink_to((source / "chunks").resolve(), target_is_directory=True)


def prepare_data(plan: StudyPlan, data: str | Path | None, log: Callable[[str], None]) -> int:
    """Generate or link the dataset and store the split; returns the number of cells."""
    from photossl.data.loaders import open_cells
    from photossl.data.splits import splits_for_dataset

    config = plan.config
    source = _data_source(config, data)
    if source is None:
        from photossl.data import generate_dataset, preset_config

        values = dict(config.generate)
        preset = values.pop("preset", "sibcl-p1")
        result = generate_dataset(preset_config(preset, **values), plan.data_dir, workers=config.generate_workers,
                                  progress=config.progress, log=log, scheduler=config.scheduler)
        log(f"data: {plan.data_dir} ({result.cells_written} cells generated, {result.cells_reused} reused, "
            f"{result.seconds:.0f} s)")
    elif plan.data_dir != Path(source):
        _make_view(Path(source), plan.data_dir)
        log(f"data: {source} (viewed through {plan.data_dir}, which holds the study's split)")
    else:
        log(f"data: {source}")
    dataset = open_cells(plan.data_dir, ["eps"])
    try:
        n_cells = int(dataset.sizes["cell"])
    finally:
        dataset.close()
    sizes = {k: v for k, v in (("n_test", config.n_test), ("n_validation", config.n_validation)) if v is not None}
    if sizes:
        splits = splits_for_dataset(plan.data_dir, n_cells, config.split_seed, **sizes)
    else:
        from photossl.finetune import resolve_splits

        splits = resolve_splits(plan.data_dir, n_cells, config.split_seed)
    log(f"split {config.split_seed}: {splits.sizes}")
    if max(config.all_budgets()) > len(splits.labelled):
        raise PhotosslError(f"budget {max(config.all_budgets())} exceeds the labelled pool of {len(splits.labelled)} cells "
                            f"(split sizes {splits.sizes}); lower 'budgets' or enlarge the dataset")
    return n_cells



# --------------------------------------------------------------------------------------------------- cell records
def cell_values(plan: StudyPlan, cell: Cell) -> dict:
    values = {**plan.finetune_values[cell.label], "data": str(plan.data_dir), "label": cell.label,
              "budget": cell.budget, "seed": cell.seed, "split_seed": plan.config.split_seed}
    job = plan.jobs.get(plan.job_of.get(cell.label, ""))
    if job is not None:
        values["pretrained"] = str(plan.out / "pretrain" / job.name)
    return values


def cell_fingerprint(plan: StudyPlan, cell: Cell) -> str:
    values = config_to_dict(make_finetune_config(cell_values(plan, cell)))
    job = plan.jobs.get(plan.job_of.get(cell.label, ""))
    return _sha({"finetune": {k: v for k, v in values.items() if k not in _FINETUNE_EXECUTION},
                 "pretrained_checkpoint": None if job is None else job.checkpoint_sha256})


def cell_path(plan: StudyPlan, cell: Cell) -> Path:
    return plan.out / "cells" / f"{cell.id}.json"


def read_cell(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def changed_cells(plan: StudyPlan, only: set[str] | None = None) -> list[str]:
    """Ids of the finished cells (record ok) whose settings differ from the plan's: their fine-tuning settings or the
    pretraining checkpoint they started from (the one on disk now, if any). Rerunning them replaces their results."""
    import dataclasses

    changed = []
    for cell in plan.cells:
        if only is not None and cell.label not in only:
            continue
        record = read_cell(cell_path(plan, cell))
        if record is None or record.get("status") != "ok":
            continue
        job = plan.jobs.get(plan.job_of.get(cell.label, ""))
        probe = dataclasses.replace(plan)
        if job is not None and job.checkpoint_sha256 is None:  # the weights on disk now (a rerun pretrains anew
            run_dir = plan.out / "pretrain" / job.name  # when there are none)
            weights = run_dir / ("model.pt" if job.kind == "cheap-label" else "checkpoint.pt")
            sha = file_sha256(weights) if weights.exists() else None
            probe.jobs = {**plan.jobs, job.name: dataclasses.replace(job, checkpoint_sha256=sha)}
        if record.get("fingerprint") != cell_fingerprint(probe, cell):
            changed.append(cell.id)
    return changed
