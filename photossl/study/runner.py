"""Run a label-budget study: data → pretraining (each method) → fine-tuning grid (method × budget × seed) → results
table → diagnostics and figures. Resumable, and a failed run never stops the others.

Layout of STUDY::

    study.yaml                 the config as run            study.log   one line per event
    data/                      generated dataset (when the config generates one)
    dataset/                   a view of an external dataset with the study's split (when split sizes are set)
    pretrain/<method>-<hash>/  pretraining runs (photossl pretrain layout), keyed by their settings
    finetune/<label>/b<B>-s<S>/  fine-tuning runs (photossl finetune layout)
    cells/<label>__b<B>__s<S>.json  one record per finished grid cell (status ok or failed), written atomically
    results.csv, results.nc    one row per grid cell: method, budget, seed, status, test metrics, validation error,
                               selected epoch, epochs run, wall time
    summary.json               label-saving factors, mean ± std per method and budget, timings, hardware, failures
    diagnostics/<name>.json|.nc  learned-symmetry diagnostics of each encoder
    figures/                   error_vs_labels, symmetry_errors, orbits_<name>, dos_predictions_<label> (PNG + PDF)

A rerun skips every cell whose record says ok and whose fingerprint (fine-tuning settings and the pretraining
checkpoint's sha256) still matches; failed, missing and stale cells run again. Pretraining runs resume from their
checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.finetune import finetune, make_finetune_config
from photossl.study.config import StudyConfig
from photossl.study.encoders import LoadedEncoder, load_encoder
from photossl.training import make_config, pretrain, resolve_defaults

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


def _file_sha256(path: Path) -> str:
    from photossl.data.storage import file_sha256

    return file_sha256(path)


def write_json_atomic(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


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
                                  **({"pretrained": "RUN"} if kind == "pretrained" else {})})
        except PhotosslError as err:
            raise PhotosslError(f"method '{label}': {err}") from None
        finetune_values[label] = values
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
    budgets = sorted(config.budgets)
    # Budget-major order: every method's small-budget cells finish first, so an early look compares like with like.
    cells = [Cell(label, b, s) for b in budgets for s in config.seeds for label in config.methods]
    return StudyPlan(config, out, data_dir, jobs, job_of, finetune_values, cells)


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
                                  progress=config.progress, log=log)
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
        log(f"split {config.split_seed}: {splits.sizes}")
    return n_cells


# ------------------------------------------------------------------------------------------------------- the run
class StudyLog:
    """One-line messages to stderr (through ``echo``) and to STUDY/study.log with a timestamp."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None):
        self.path = path
        self.echo = echo or (lambda message: print(message, file=sys.stderr))

    def __call__(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(f"{stamp} {message}\n")
        self.echo(message)


def hardware() -> dict[str, Any]:
    import torch

    record = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        record["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    return record


def run_pretraining(plan: StudyPlan, log: Callable[[str], None]) -> None:
    for job in plan.jobs.values():
        run_dir = plan.out / "pretrain" / job.name
        tick = time.perf_counter()
        log(f"pretrain {job.name} (for {', '.join(job.labels)}) -> {run_dir}")
        try:
            summary = pretrain(make_config(job.values), run_dir, resume=True, echo=log)
            if summary.get("status") not in ("complete", None):
                raise PhotosslError(f"pretraining ended with status {summary.get('status')}")
            job.status = "ok"
            job.checkpoint_sha256 = _file_sha256(run_dir / "checkpoint.pt")
            probe = summary.get("final_probe_rel_l1")
            log(f"pretrain {job.name}: done in {time.perf_counter() - tick:.0f} s"
                + (f", ridge-probe validation DOS error {probe:.4g}" if probe is not None else ""))
        except Exception as err:  # noqa: BLE001 - a failed method must not stop the others
            job.status, job.error = "failed", f"{type(err).__name__}: {err}"
            log(f"pretrain {job.name}: FAILED ({job.error}); its cells will be reported as failed")
        job.wall_time_s = round(time.perf_counter() - tick, 3)


def _cell_values(plan: StudyPlan, cell: Cell) -> dict:
    values = {**plan.finetune_values[cell.label], "data": str(plan.data_dir), "label": cell.label,
              "budget": cell.budget, "seed": cell.seed, "split_seed": plan.config.split_seed}
    job = plan.jobs.get(plan.job_of.get(cell.label, ""))
    if job is not None:
        values["pretrained"] = str(plan.out / "pretrain" / job.name)
    return values


def cell_fingerprint(plan: StudyPlan, cell: Cell) -> str:
    values = config_to_dict(make_finetune_config(_cell_values(plan, cell)))
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


def run_cell(plan: StudyPlan, cell: Cell, fingerprint: str, log: Callable[[str], None]) -> dict:
    """Fine-tune one grid cell and write its record (ok or failed); never raises for a failed run."""
    out = plan.out / "finetune" / cell.label / f"b{cell.budget}-s{cell.seed}"
    record: dict[str, Any] = {"id": cell.id, "method": cell.label, "budget": cell.budget, "seed": cell.seed,
                              "fingerprint": fingerprint, "out": str(out)}
    tick = time.perf_counter()
    job = plan.jobs.get(plan.job_of.get(cell.label, ""))
    try:
        if job is not None and job.status != "ok":
            raise PhotosslError(f"pretraining {job.name} failed: {job.error}")
        metrics = finetune(make_finetune_config(_cell_values(plan, cell)), out, overwrite=True)
        record.update(status="ok", metrics=metrics)
    except Exception as err:  # noqa: BLE001 - reported in the record and the log, the grid goes on
        record.update(status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        log(f"cell {cell.id}: FAILED ({record['error']})")
    record["wall_time_s"] = round(time.perf_counter() - tick, 3)
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json_atomic(cell_path(plan, cell), record)
    return record


def run_grid(plan: StudyPlan, log: Callable[[str], None]) -> dict[str, int]:
    from tqdm.auto import tqdm

    counts = {"ran": 0, "skipped": 0, "failed": 0}
    todo = []
    for cell in plan.cells:
        fingerprint = cell_fingerprint(plan, cell)
        record = read_cell(cell_path(plan, cell))
        if record is not None and record.get("status") == "ok" and record.get("fingerprint") == fingerprint:
            counts["skipped"] += 1
            continue
        if record is not None and record.get("status") == "ok":
            log(f"cell {cell.id}: settings changed since it ran; running it again")
        todo.append((cell, fingerprint))
    if counts["skipped"]:
        log(f"resuming: {counts['skipped']} of {len(plan.cells)} cells already done")
    bar = tqdm(todo, desc="study cells", unit="cell", disable=not plan.config.progress, dynamic_ncols=True,
               file=sys.stderr)
    for cell, fingerprint in bar:
        bar.set_postfix_str(cell.id, refresh=True)
        record = run_cell(plan, cell, fingerprint, log)
        counts["ran"] += 1
        if record["status"] == "ok":
            metrics = record["metrics"]
            metric = metrics["metric"]
            log(f"cell {cell.id}: test {metric} {metrics[metric]:.4g}, selected epoch {metrics['selected_epoch']}, "
                f"{record['wall_time_s']:.0f} s")
        else:
            counts["failed"] += 1
    bar.close()
    return counts


# --------------------------------------------------------------------------------------------------- the table
TABLE_FIXED = ("method", "kind", "budget", "seed", "status")
TABLE_TAIL = ("selected_epoch", "epochs_run", "wall_time_s", "error")


def results_rows(plan: StudyPlan) -> tuple[list[dict], str | None]:
    """One row per planned cell that has a record, and the primary metric's name."""
    rows, metric_names, primary = [], [], None
    for cell in plan.cells:
        record = read_cell(cell_path(plan, cell))
        if record is None:
            continue
        row: dict[str, Any] = {"method": cell.label, "kind": plan.config.method_kind(cell.label),
                               "budget": cell.budget, "seed": cell.seed, "status": record.get("status", "failed")}
        metrics = record.get("metrics") or {}
        if record.get("status") == "ok":
            primary = primary or metrics["metric"]
            for name, value in metrics["test"].items():
                row[name] = value
                if name not in metric_names:
                    metric_names.append(name)
            row[f"validation_{metrics['metric']}"] = metrics["validation"][metrics["metric"]]
            row["selected_epoch"] = metrics["selected_epoch"]
            row["epochs_run"] = metrics["epochs_run"]
        row["wall_time_s"] = record.get("wall_time_s")
        row["error"] = record.get("error", "")
        rows.append(row)
    if primary is not None and primary in metric_names:
        metric_names.remove(primary)
        metric_names.insert(0, primary)
    columns = [*TABLE_FIXED, *metric_names, *([f"validation_{primary}"] if primary else []), *TABLE_TAIL]
    table = [{c: row.get(c, "" if c in ("error",) else math.nan) for c in columns} for row in rows]
    return table, primary


def write_results(plan: StudyPlan, rows: list[dict], metric: str | None) -> tuple[Path, Path]:
    """results.csv and results.nc (dimension ``row``); both written atomically."""
    import csv

    import xarray as xr

    csv_path, nc_path = plan.out / "results.csv", plan.out / "results.nc"
    columns = list(rows[0]) if rows else list(TABLE_FIXED)
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    os.replace(tmp, csv_path)

    data = {}
    for column in columns:
        values = [row[column] for row in rows]
        if column in ("method", "kind", "status", "error"):
            data[column] = ("row", np.array([str(v) for v in values], dtype=object))
        elif column in ("budget", "seed"):
            data[column] = ("row", np.array(values, dtype=np.int64))
        else:
            data[column] = ("row", np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    dataset = xr.Dataset(data, coords={"row": np.arange(len(rows))},
                         attrs={"study": plan.config.name, "metric": metric or "",
                                "description": "one row per fine-tuning grid cell (method x budget x seed); test "
                                               "metrics of the model selected on the validation split",
                                "config": json.dumps(config_to_dict(plan.config), default=str)})
    tmp = nc_path.with_name(f".{nc_path.name}.tmp")
    dataset.to_netcdf(tmp, engine="h5netcdf")
    os.replace(tmp, nc_path)
    return csv_path, nc_path


def aggregate(rows: list[dict], metric: str) -> dict[str, dict[str, dict[str, float]]]:
    """{method: {budget: {mean, std, min, max, n}}} over seeds of the ok cells."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    groups: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        value = row.get(metric)
        if row["status"] == "ok" and value is not None and math.isfinite(value):
            groups.setdefault((row["method"], int(row["budget"])), []).append(float(value))
    for (method, budget), values in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        v = np.array(values)
        out.setdefault(method, {})[str(budget)] = {
            "mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(v.size)}
    return out


# ------------------------------------------------------------------------------------------ diagnostics, figures
def _diagnostic_images(plan: StudyPlan, n: int):
    """Raw-normalised cells for diagnostics: test, then validation, then the rest (no labels are read)."""
    from photossl.data.loaders import load_arrays, open_cells
    from photossl.finetune import resolve_splits

    dataset = open_cells(plan.data_dir, ["eps"])
    try:
        n_cells = int(dataset.sizes["cell"])
        splits = resolve_splits(plan.data_dir, n_cells, plan.config.split_seed)
        rest = np.setdiff1d(np.arange(n_cells), np.concatenate([splits.test, splits.validation]))
        order = np.concatenate([splits.test, splits.validation, rest])[:n]
        images, _ = load_arrays(dataset, None, np.sort(order))
    finally:
        dataset.close()
    return images


def _encoders(plan: StudyPlan, log) -> dict[str, LoadedEncoder]:
    """Every encoder worth diagnosing: each pretraining run, the supervised network, and a random initialisation."""
    import torch

    from photossl.models import build_encoder

    found: dict[str, LoadedEncoder] = {}
    for job in plan.jobs.values():
        if job.status != "ok":
            continue
        name = job.labels[0] if len(job.labels) == 1 else job.name
        try:
            found[name] = load_encoder(plan.out / "pretrain" / job.name, name)
        except Exception as err:  # noqa: BLE001
            log(f"diagnostics: cannot load {job.name} ({type(err).__name__}: {err})")
    # What labels alone teach: the supervised network at its largest finished budget (first seed).
    for label in plan.config.methods:
        if plan.config.method_kind(label) != "supervised":
            continue
        for budget in sorted(plan.config.budgets, reverse=True):
            out = plan.out / "finetune" / label / f"b{budget}-s{plan.config.seeds[0]}"
            record = read_cell(cell_path(plan, Cell(label, budget, plan.config.seeds[0])))
            if record is not None and record.get("status") == "ok" and (out / "model.pt").exists():
                found[f"{label}-b{budget}"] = load_encoder(out, f"{label}-b{budget}")
                break
    # What the architecture gives for free: a randomly initialised encoder of the supervised network's kind.
    name = plan.config.finetune.get("encoder", "small")
    kwargs: dict[str, Any] = {"in_channels": 1}
    if name in ("essl", "small"):
        kwargs["circular_padding"] = bool(plan.config.finetune.get("circular_padding", True))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        found["random-init"] = LoadedEncoder("random-init", build_encoder(name, **kwargs).eval())
    return found


def run_diagnostics(plan: StudyPlan, log) -> dict[str, dict]:
    from photossl.evaluation import (
        diagnostics_to_dataset,
        orbit_embeddings,
        plot_embedding_orbits,
        plot_symmetry_errors,
        symmetry_diagnostics,
    )

    config = plan.config
    folder, figures = plan.out / "diagnostics", plan.out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    images = _diagnostic_images(plan, config.diagnostics_cells)
    results = {}
    for name, loaded in _encoders(plan, log).items():
        encoder = loaded.encoder
        try:
            tick = time.perf_counter()
            result = symmetry_diagnostics(encoder, images, config.diagnostics_groups, prediction_head=loaded.predictor,
                                          prediction_group=loaded.predict_group or "rot4")
            write_json_atomic(folder / f"{name}.json", result)
            diagnostics_to_dataset(result).to_netcdf(folder / f"{name}.nc", engine="h5netcdf")
            results[name] = result
            embeddings, labels, names = orbit_embeddings(encoder, images[:8], "rot4")
            plot_embedding_orbits(embeddings, labels, figures / f"orbits_{name}", element_names=names)
            accuracy = result["prediction"]["accuracy"] if result.get("prediction") else None
            log(f"diagnostics {name}: {len(images)} cells, {time.perf_counter() - tick:.0f} s"
                + (f", transformation-prediction accuracy {accuracy:.3f}" if accuracy is not None else ""))
        except Exception as err:  # noqa: BLE001
            log(f"diagnostics {name}: FAILED ({type(err).__name__}: {err})")
    if results:
        plot_symmetry_errors(results, figures / "symmetry_errors",
                             metrics=("invariance_error", "wahba_error", "gamma_f"))
    return results


def plot_predictions(plan: StudyPlan, rows: list[dict], metric: str, log) -> list[str]:
    """Predicted against true DOS on test cells for the best network method and the reference, at the largest
    budget with results (first seed)."""
    from photossl.evaluation import plot_dos_predictions
    from photossl.finetune import load_finetuned, resolve_splits
    from photossl.finetune.data import _open

    ok = [r for r in rows if r["status"] == "ok" and r["kind"] != "classical"]
    if not ok or metric != "dos_rel_l1":
        return []
    budget = max(r["budget"] for r in ok)
    means = aggregate([r for r in ok if r["budget"] == budget], metric)
    best = min(means, key=lambda m: means[m][str(budget)]["mean"])
    labels = list(dict.fromkeys([best, plan.config.reference]))
    written = []
    for label in labels:
        out = plan.out / "finetune" / label / f"b{budget}-s{plan.config.seeds[0]}"
        if not (out / "model.pt").exists():
            continue
        model = load_finetuned(out)
        config = make_finetune_config({**model.config, "data": str(plan.data_dir)})
        dataset = _open(plan.data_dir, config)
        try:
            from photossl.data.loaders import load_arrays

            splits = resolve_splits(plan.data_dir, int(dataset.sizes["cell"]), plan.config.split_seed)
            cells = splits.test[:4]
            eps, truth = load_arrays(dataset, model.target.variable, cells, normalise=False)
        finally:
            dataset.close()
        pred = model.predict(eps)
        truth = truth.double().numpy()
        if model.target.offset is not None:
            pred, truth = pred + model.target.offset, truth + model.target.offset
        stem = plan.out / "figures" / f"dos_predictions_{label}"
        plot_dos_predictions(model.target.coords.get("freq"), truth, pred, stem, n=len(cells))
        written.append(str(stem))
        log(f"figure {stem}.png: {label} at {budget} labels on test cells {cells.tolist()}")
    return written


# --------------------------------------------------------------------------------------------------------- main
def run_study(config: StudyConfig, out: str | Path, data: str | Path | None = None,
              echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the study ``config`` in folder ``out``; returns the summary (also STUDY/summary.json).

    ``data`` overrides the config's data source. ``echo`` receives one-line progress messages.
    """
    import yaml

    from photossl.evaluation import plot_error_vs_labels

    started = time.perf_counter()
    plan = plan_study(config, out, data)
    plan.out.mkdir(parents=True, exist_ok=True)
    log = StudyLog(plan.out / "study.log", echo)
    at_start = hardware()
    log(f"study {config.name}: {len(plan.config.methods)} methods x {len(config.budgets)} budgets x "
        f"{len(config.seeds)} seeds = {len(plan.cells)} cells in {plan.out} (load average {at_start.get('load_average')})")
    (plan.out / "study.yaml").write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))

    n_cells = prepare_data(plan, data, log)
    tick = time.perf_counter()
    run_pretraining(plan, log)
    pretrain_time = time.perf_counter() - tick
    tick = time.perf_counter()
    counts = run_grid(plan, log)
    grid_time = time.perf_counter() - tick

    rows, metric = results_rows(plan)
    csv_path, _ = write_results(plan, rows, metric)
    summary: dict[str, Any] = {
        "study": config.name,
        "out": str(plan.out),
        "data": str(plan.data_dir),
        "n_cells": n_cells,
        "metric": metric,
        "cells": {"planned": len(plan.cells), **counts},
        "failed_cells": [r["method"] + f"__b{r['budget']}__s{r['seed']}: {r['error']}" for r in rows
                         if r["status"] != "ok"],
        "pretraining": {job.name: {"labels": job.labels, "status": job.status, "error": job.error,
                                   "wall_time_s_this_call": job.wall_time_s} for job in plan.jobs.values()},
        "wall_time_s_this_call": {"pretraining": round(pretrain_time, 1), "grid": round(grid_time, 1)},
        "hardware_at_start": at_start,
    }
    if metric is not None:
        summary["mean_over_seeds"] = aggregate(rows, metric)
        try:
            factors = plot_error_vs_labels(csv_path, plan.out / "figures" / "error_vs_labels", metric,
                                           config.at_error, reference=config.reference)
            summary["label_saving_factors"] = {k: (None if not math.isfinite(v) else v) for k, v in factors.items()}
            log(f"figure {plan.out / 'figures' / 'error_vs_labels'}.png; label-saving factors vs "
                f"{config.reference}: {summary['label_saving_factors']}")
        except Exception as err:  # noqa: BLE001
            log(f"figure error_vs_labels: FAILED ({type(err).__name__}: {err})")
        try:
            summary["dos_prediction_figures"] = plot_predictions(plan, rows, metric, log)
        except Exception as err:  # noqa: BLE001
            log(f"figure dos_predictions: FAILED ({type(err).__name__}: {err})")
    if config.diagnostics:
        tick = time.perf_counter()
        try:
            diagnostics = run_diagnostics(plan, log)
            summary["diagnostics"] = {name: _diagnostics_summary(d) for name, d in diagnostics.items()}
        except Exception as err:  # noqa: BLE001
            log(f"diagnostics: FAILED ({type(err).__name__}: {err})")
        summary["wall_time_s_this_call"]["diagnostics"] = round(time.perf_counter() - tick, 1)
    summary["wall_time_s_this_call"]["total"] = round(time.perf_counter() - started, 1)
    summary["hardware_at_end"] = hardware()
    write_json_atomic(plan.out / "summary.json", summary)
    log(f"study {config.name}: {counts['ran']} cells ran ({counts['failed']} failed), {counts['skipped']} skipped; "
        f"results in {csv_path}; {summary['wall_time_s_this_call']['total']:.0f} s")
    return summary


def _diagnostics_summary(result: dict) -> dict[str, Any]:
    """Means per group of the per-transformation diagnostics, for summary.json."""
    out: dict[str, Any] = {}
    for group, info in result["groups"].items():
        rows = [r for r in result["transformations"] if r["group"] == group]
        out[group] = {
            "invariance_error": float(np.mean([r["invariance_error"] for r in rows])),
            "wahba_error": float(np.mean([r["wahba_error"] for r in rows])),
            "gamma_f": info["gamma_f"],
            "composition_error_mean": info["composition_error_mean"],
        }
    if result.get("prediction"):
        out["prediction_accuracy"] = result["prediction"]["accuracy"]
    return out
