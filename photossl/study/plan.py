"""The plan of a study: its grid cells with their typed fine-tuning configs, its pretraining runs keyed by their
settings, where everything lives in STUDY, and the data it reads (photonic cells, generated or an external dataset
seen through a view that holds the study's split; or a vision dataset).

Everything is resolved, and every config parsed, once, before anything runs, so that a bad config fails at once with
one line.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from photossl.config import settings
from photossl.errors import PhotosslError
from photossl.finetune import make_finetune_config
from photossl.study.cheap_label import plan_cheap_label
from photossl.study.config import RANDOM_INIT, StudyConfig
from photossl.study.records import (  # noqa: F401 - the plan's parts, imported from here by the other modules
    Cell,
    PretrainJob,
    StudyPlan,
    _sha,
    cell_finished,
    file_sha256,
    pretrain_root,
    write_json_atomic,
)
from photossl.training import make_config, resolve_defaults


# ------------------------------------------------------------------------------------------------------ planning
def _data_source(config: StudyConfig, data: str | Path | None) -> str | None:
    source = str(data) if data is not None else config.data
    if source is not None and (source == "bundled" or source.startswith("bundled:")):
        from photossl.data import bundled_dataset_path

        name = source.partition(":")[2] or "sibcl-p1-tm-512"
        return str(bundled_dataset_path(name))
    return source


def plan_study(config: StudyConfig, out: str | Path, data: str | Path | None = None) -> StudyPlan:
    """Resolve data location, pretraining runs, each cell's fine-tuning config and the grid; raise PhotosslError on
    bad input."""
    config.validate()
    out = Path(out)
    source = None
    if config.track == "vision":
        if data is not None:
            raise PhotosslError("--data names a photonic dataset folder; a vision study reads its config's 'dataset'")
        data_dir = None
    else:
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
    cell_configs: dict[Cell, Any] = {}
    for label in config.methods:
        kind = config.method_kind(label)
        base = _finetune_config(config, label, data_dir)
        job = None
        if kind == "cheap-label":  # its "pretraining": the same network trained on rough labels of the pool
            job = plan_cheap_label(config, label, base, source, data_dir)
        elif kind == "pretrained":
            job = _pretrain_job(config, label, data_dir)
        if job is not None:
            jobs.setdefault(job.name, job).labels.append(label)
            job_of[label] = job.name
            base = dataclasses.replace(base, pretrained=str(pretrain_root(config, out) / job.name))
        for budget in config.budgets_of(label):
            for seed in config.seeds:
                cell_configs[Cell(label, budget, seed)] = dataclasses.replace(base, budget=budget, seed=seed)
    # Budget-major order: every method's small-budget cells finish first, so an early look compares like with like.
    cells = [Cell(label, b, s) for b in config.all_budgets() for s in config.seeds for label in config.methods
             if b in config.budgets_of(label)]
    if config.track == "vision":
        check_vision_budgets(config, next(iter(cell_configs.values())))
    else:
        check_budgets(config, source)
    return StudyPlan(config, out, data_dir, jobs, job_of, cell_configs, cells)


def _finetune_config(config: StudyConfig, label: str, data_dir: Path | None):
    """The typed fine-tuning config shared by ``label``'s cells (its budget and seed are each cell's; a pretrained
    method's run is a placeholder until its pretraining job is named)."""
    kind = config.method_kind(label)
    options = config.options(label)
    values = {"device": config.device, "progress": False, **config.finetune, **options.finetune}
    if config.threads is not None:
        values.setdefault("threads", config.threads)
    placeholder = {"pretrained": "RUN"} if kind in ("pretrained", "cheap-label") else {}
    try:  # reject bad keys now
        if config.track == "vision":
            from photossl.finetune.vision_config import make_vision_finetune_config

            vision = {k: getattr(config, k) for k in ("dataset", "data_root", "image_size", "n_validation")
                      if getattr(config, k) is not None}
            frozen = {"mode": "frozen"} if kind == RANDOM_INIT else {}
            return make_vision_finetune_config({**values, **vision, **frozen, "label": label,
                                                "split_seed": config.split_seed, **placeholder})
        if kind == "classical":
            values["baseline"] = config.method_name(label)
        return make_finetune_config({**values, "data": str(data_dir), "label": label, "split_seed": config.split_seed,
                                     **placeholder})
    except PhotosslError as err:
        raise PhotosslError(f"method '{label}': {err}") from None


def _pretrain_job(config: StudyConfig, label: str, data_dir: Path | None) -> PretrainJob:
    """The pretraining run of ``label``, named by its method and the hash of its resolved settings."""
    options = config.options(label)
    if config.track == "vision":
        where = {"dataset": config.dataset, "data_root": config.data_root, "image_size": config.image_size}
    else:
        where = {"data": str(data_dir)}
    pre = {"track": config.track, "device": config.device, "progress": config.progress, **config.pretrain,
           **options.pretrain, "method": config.method_name(label), **where, "split_seed": config.split_seed}
    if config.threads is not None:
        pre.setdefault("threads", config.threads)
    try:
        resolved = resolve_defaults(make_config(pre))
    except PhotosslError as err:
        raise PhotosslError(f"method '{label}': {err}") from None
    # execution-only fields (photossl.config.EXECUTION) neither move a run nor invalidate its finished cells
    key = _sha(settings(resolved))[:8]
    return PretrainJob(f"{resolved.method}-{key}", resolved)


def check_vision_budgets(config: StudyConfig, cell_config) -> None:
    """Refuse a budget larger than the vision dataset's labelled pool (its train split less the validation images)
    before anything runs or is written (also for ``--dry-run``)."""
    from photossl.vision import dataset_info
    from photossl.vision.splits import validation_count

    n_train = dataset_info(config.dataset).n_train
    n_validation = validation_count(cell_config.n_validation, n_train)
    largest = max(config.all_budgets())
    if largest > n_train - n_validation:
        raise PhotosslError(f"budget {largest} exceeds the labelled pool of {n_train - n_validation} images "
                            f"({config.dataset}: {n_train} train images, {n_validation} held out for validation); "
                            "lower 'budgets' or 'n_validation'")


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


def _split_sizes(config: StudyConfig) -> dict[str, int | float]:
    """The :func:`photossl.data.make_splits` sizes the study sets (``n_test`` / ``n_validation``)."""
    return {k: v for k, v in (("n_test", config.n_test), ("n_validation", config.n_validation)) if v is not None}


def check_budgets(config: StudyConfig, source: str | None) -> None:
    """Refuse a budget larger than the labelled pool before anything runs or is written (also for ``--dry-run``)."""
    n_cells = _planned_cell_count(config, source)
    if n_cells is None:
        return
    sizes = _split_sizes(config)
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
    """Generate or link the dataset and store the split (vision: load it and check the split); returns the number of
    cells (images)."""
    from photossl.data.loaders import open_cells
    from photossl.data.splits import splits_for_dataset

    config = plan.config
    if config.track == "vision":
        return _prepare_vision(plan, log)
    source = _data_source(config, data)
    if source is None:
        from photossl.data import generate_dataset, preset_config

        values = dict(config.generate)
        generate_config = preset_config(values.pop("preset", "sibcl-p1"), **values)
        wanted = needed_label_cells(plan, generate_config.n_cells) if config.label_cells == "needed" else None
        # Several `--only` processes may start on one study folder at once: the later ones wait for the data.
        result = generate_dataset(generate_config, plan.data_dir, workers=config.generate_workers,
                                  progress=config.progress, log=log, scheduler=config.scheduler, label_cells=wanted,
                                  wait_for_writer=True)
        unlabelled = f", {result.cells_unlabelled} without labels" if result.cells_unlabelled else ""
        log(f"data: {plan.data_dir} ({result.cells_written} cells generated, {result.cells_reused} reused"
            f"{unlabelled}, {result.seconds:.0f} s)")
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
    sizes = _split_sizes(config)
    if sizes:
        splits = splits_for_dataset(plan.data_dir, n_cells, config.split_seed, **sizes)
    else:
        from photossl.finetune import resolve_splits

        splits = resolve_splits(plan.data_dir, n_cells, config.split_seed)
    log(f"split {config.split_seed}: {splits.sizes}")
    if max(config.all_budgets()) > len(splits.labelled):
        raise PhotosslError(f"budget {max(config.all_budgets())} exceeds the labelled pool of "
                            f"{len(splits.labelled)} cells "
                            f"(split sizes {splits.sizes}); lower 'budgets' or enlarge the dataset")
    return n_cells


def needed_label_cells(plan: StudyPlan, n_cells: int) -> np.ndarray:
    """Sorted indices of the cells whose labels the study reads: test, validation, each seed's largest label set
    (the smaller budgets are nested in it), the tuning label sets and the pretraining runs' ridge-probe cells."""
    from photossl.data.splits import budget_indices, make_splits

    config = plan.config
    sizes = _split_sizes(config)
    splits = make_splits(n_cells, config.split_seed, **sizes)
    parts = [splits.test, splits.validation]
    parts += [budget_indices(splits, max(config.all_budgets()), seed) for seed in config.seeds]
    if config.tuning is not None:
        parts += [budget_indices(splits, config.tuning.budget, seed) for seed in config.tuning.seeds]
    for job in plan.jobs.values():
        probe = getattr(job.config, "probe_train", None)
        if probe:
            parts.append(budget_indices(splits, min(int(probe), len(splits.labelled)), 0))
    return np.unique(np.concatenate(parts).astype(np.int64))


def _prepare_vision(plan: StudyPlan, log: Callable[[str], None]) -> int:
    """Load the vision dataset once (its files must be readable before anything trains) and log its split."""
    from photossl.finetune.vision_data import VisionImages
    from photossl.vision.splits import vision_splits

    config = plan.shared_config()
    images = VisionImages.load(config)
    (train, labels), (test, _) = images.train, images.test
    splits = vision_splits(labels.numpy(), config.split_seed, config.n_validation)
    log(f"data: {config.dataset}, {len(labels)} train and {len(test)} test images of {train.shape[-1]} px, "
        f"{images.n_classes} classes")
    log(f"split {config.split_seed}: {splits.sizes} of the train images; test: the dataset's {len(test)}")
    if max(plan.config.all_budgets()) > len(splits.labelled):
        raise PhotosslError(f"budget {max(plan.config.all_budgets())} exceeds the labelled pool of "
                            f"{len(splits.labelled)} images; lower 'budgets' or 'n_validation'")
    return int(len(labels) + len(test))


def cell_dataset(plan: StudyPlan, config, datasets: dict | None):
    """The data a cell with ``config`` reads, from the cache ``datasets`` (opened or loaded there on first use); None
    without a cache (the run opens its own)."""
    if datasets is None:
        return None
    if plan.config.track == "vision":
        from photossl.finetune.vision_data import VisionImages

        key = VisionImages.key_of(config)
        if key not in datasets:
            datasets[key] = VisionImages.load(config)
        return datasets[key]
    key = (str(config.data), config.target, config.polarization)
    if key not in datasets:
        from photossl.finetune.data import open_target_dataset

        datasets[key] = open_target_dataset(config.data, config)
    return datasets[key]


# --------------------------------------------------------------------------------------------------- cell records
def cell_fingerprint(plan: StudyPlan, cell: Cell) -> str:
    """The hash of what a cell's result depends on: its fine-tuning settings (execution fields aside) and the sha256
    of the pretraining checkpoint it starts from. A finished cell with the same fingerprint is reused."""
    job = plan.jobs.get(plan.job_of.get(cell.label, ""))
    return _sha({"finetune": settings(plan.cell_configs[cell]),
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
            run_dir = plan.pretrain_dir / job.name  # when there are none)
            weights = run_dir / ("model.pt" if job.kind == "cheap-label" else "checkpoint.pt")
            sha = file_sha256(weights) if weights.exists() else None
            probe.jobs = {**plan.jobs, job.name: dataclasses.replace(job, checkpoint_sha256=sha)}
        if record.get("fingerprint") != cell_fingerprint(probe, cell):
            changed.append(cell.id)
    return changed
