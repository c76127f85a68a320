"""Run a label-budget study: data → pretraining (each method) → fine-tuning grid (method × budget × seed) → results
table → diagnostics and figures. Resumable, and a failed run never stops the others (a failed write does: a full
disk or a refused permission stops the study with one line, and a rerun resumes).

Layout of STUDY::

    study.yaml                 the config as run            study.log   one line per event
    data/                      generated dataset (when the config generates one)
    dataset/                   a view of an external dataset with the study's split (when split sizes are set)
    pretrain/<method>-<hash>/  pretraining runs (photossl pretrain layout), keyed by their settings; a cheap-label
                               run is a photossl finetune run on rough labels, with label_cost.json
    rough/<preset>-<hash>/     rough labels of the study's cells (cheap-label methods; photossl generate layout)
    finetune/<label>/b<B>-s<S>/  fine-tuning runs (photossl finetune layout)
    cells/<label>__b<B>__s<S>.json  one record per finished grid cell (status ok or failed), written atomically
    results.csv, results.nc    one row per grid cell: method, budget, seed, status, test metrics, validation error,
                               selected epoch, epochs run, wall time
    summary.json               label-saving factors, mean ± std per method and budget, timings, hardware, failures,
                               label_cost (cheap-label methods: rough labels' solver seconds in exact labels)
    diagnostics/<name>.json|.nc  learned-symmetry diagnostics of each encoder
    figures/                   error_vs_labels, symmetry_errors, orbits_<name>, dos_predictions_<label> (PNG + PDF)

A rerun skips every cell whose record says ok and whose fingerprint (fine-tuning settings and the pretraining
checkpoint's sha256) still matches; failed, missing and stale cells run again. Pretraining runs resume from their
checkpoints. With ``finetune_ensemble`` > 1 the cells of one network method (up to that many) are fine-tuned together
as one stacked network in this process (:mod:`photossl.study.ensemble_cells`); each still writes its own record. With
``scheduler`` set the pretraining runs and the cells run as tasks of a Dask cluster (:mod:`photossl.study.dask_run`).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.files import WriteError, write_text_atomic
from photossl.study.cheap_label import label_costs
from photossl.study.config import StudyConfig
from photossl.study.ensemble_cells import ensemble_batches, run_cells_together
from photossl.study.execute import StudyLog, mark_finished_pretraining, run_cell, run_job
from photossl.study.figures import diagnostics_summary, plot_predictions, run_diagnostics
from photossl.study.plan import (
    Cell,
    StudyPlan,
    cell_fingerprint,
    cell_finished,
    cell_path,
    changed_cells,
    plan_study,
    prepare_data,
    read_cell,
    write_json_atomic,
)
from photossl.study.table import aggregate, label_efficiency, results_rows, write_results
from photossl.study.tuning import apply_tuning, run_tuning


# ------------------------------------------------------------------------------------------------------- the run
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


def run_pretraining(plan: StudyPlan, log: Callable[[str], None], only: set[str] | None = None) -> None:
    for job in plan.jobs.values():
        if only is not None and not only.intersection(job.labels):
            continue
        run_job(plan, job, log)


def run_grid(plan: StudyPlan, log: Callable[[str], None], only: set[str] | None = None) -> dict[str, int]:
    from tqdm.auto import tqdm

    counts = {"ran": 0, "skipped": 0, "failed": 0}
    todo = []
    mine = [cell for cell in plan.cells if only is None or cell.label in only]
    for cell in mine:
        fingerprint = cell_fingerprint(plan, cell)
        record = read_cell(cell_path(plan, cell))
        if cell_finished(record, fingerprint):
            counts["skipped"] += 1
            continue
        if record is not None and record.get("status") == "ok":
            log(f"cell {cell.id}: settings changed since it ran; running it again")
        todo.append((cell, fingerprint))
    if counts["skipped"]:
        log(f"resuming: {counts['skipped']} of {len(mine)} cells already done")
    bar = tqdm(total=len(todo), desc="study cells", unit="cell", disable=not plan.config.progress,
               dynamic_ncols=True, file=sys.stderr)
    bar_log = log

    def log(message: str) -> None:  # above the live bar, which is redrawn below the line (as tqdm.write does)
        with tqdm.external_write_mode(file=sys.stderr):
            bar_log(message)

    def report(cell: Cell, record: dict) -> None:
        counts["ran"] += 1
        bar.update()
        if record["status"] == "ok":
            metrics = record["metrics"]
            metric = metrics["metric"]
            log(f"cell {cell.id}: test {metric} {metrics[metric]:.4g}, selected epoch "
                f"{metrics['selected_epoch']}, {record['wall_time_s']:.0f} s")
        else:
            counts["failed"] += 1

    def still_to_do(cell: Cell, fingerprint: str) -> bool:
        """False for a cell that another process sharing the folder has finished since the grid was listed."""
        if not cell_finished(read_cell(cell_path(plan, cell)), fingerprint):
            return True
        counts["skipped"] += 1
        bar.update()
        log(f"cell {cell.id}: finished meanwhile by another process; skipped")
        return False

    # The cells of one network method train together as one stacked network (finetune_ensemble), the rest alone.
    batches, alone = ensemble_batches(plan, todo)
    datasets: dict = {}
    try:
        for batch in batches:
            batch = [(cell, fingerprint) for cell, fingerprint in batch if still_to_do(cell, fingerprint)]
            if not batch:
                continue
            bar.set_postfix_str(f"{batch[0][0].label} x{len(batch)}", refresh=True)
            for (cell, _), record in zip(batch, run_cells_together(plan, batch, log, datasets)):
                report(cell, record)
        for cell, fingerprint in alone:
            if not still_to_do(cell, fingerprint):
                continue
            bar.set_postfix_str(cell.id, refresh=True)
            report(cell, run_cell(plan, cell, fingerprint, log, datasets))
    finally:
        bar.close()
        for dataset in datasets.values():
            dataset.close()
    return counts


def run_here(plan: StudyPlan, log: Callable[[str], None],
             only: set[str] | None = None) -> tuple[dict[str, int], float, float]:
    """Pretraining, then the grid, in this process: (cell counts, pretraining seconds, grid seconds)."""
    tick = time.perf_counter()
    run_pretraining(plan, log, only)
    if only is not None:  # the other methods' finished runs still feed the diagnostics
        mark_finished_pretraining(plan)
    pretrain_time = time.perf_counter() - tick
    tick = time.perf_counter()
    counts = run_grid(plan, log, only)
    return counts, pretrain_time, time.perf_counter() - tick


# --------------------------------------------------------------------------------------------------------- main
def run_study(config: StudyConfig, out: str | Path, data: str | Path | None = None,
              echo: Callable[[str], None] | None = None, only: list[str] | None = None,
              rerun_changed: bool = False) -> dict[str, Any]:
    """Run (or resume) the study ``config`` in folder ``out``; returns the summary (also STUDY/summary.json).

    ``data`` overrides the config's data source. ``echo`` receives one-line progress messages. ``only``: run the
    pretraining and cells of these method labels alone (several processes or machines sharing STUDY can each take
    some methods; while one writes the data the others wait); the table, figures and diagnostics cover every finished
    cell and run.
    Finished cells whose settings changed are refused (nothing runs) unless ``rerun_changed``, which replaces them.
    """
    import yaml

    from photossl.evaluation import plot_error_vs_labels

    started = time.perf_counter()
    if config.scheduler is not None:  # workers elsewhere would resolve relative paths against their own folders
        from photossl.study.dask_run import absolute_paths  # the Dask engine loads only when a scheduler is given

        out, data = absolute_paths(config, out, data)
    selected = None
    if only is not None:
        if not only:
            raise PhotosslError("--only names no method: give comma-separated labels of the study's methods")
        unknown = [label for label in only if label not in config.methods]
        if unknown:
            raise PhotosslError(f"--only names '{unknown[0]}', which is not a method of this study "
                                f"({', '.join(config.methods)})")
        selected = set(only)
    if config.tuning is not None:  # each method's knobs, chosen on the validation cells, before the study proper
        config = apply_tuning(config, run_tuning(config, out, data, run_study, echo, selected))
    plan = plan_study(config, out, data)
    stale = changed_cells(plan, selected)
    if stale and not rerun_changed:
        shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        raise PhotosslError(f"{len(stale)} finished cells ran with other settings ({shown}); pass --rerun-changed to "
                            "run them again and replace their results, or choose another --out")
    plan.out.mkdir(parents=True, exist_ok=True)
    log = StudyLog(plan.out / "study.log", echo)
    at_start = hardware()
    if selected is not None:
        log(f"study {config.name}: running only {', '.join(sorted(selected))}")
    log(f"study {config.name}: {len(plan.cells)} cells ({len(config.methods)} methods, budgets "
        f"{', '.join(map(str, config.all_budgets()))}, {len(config.seeds)} seeds) in {plan.out} "
        f"(load average {at_start.get('load_average')})")
    write_text_atomic(plan.out / "study.yaml", yaml.safe_dump(config_to_dict(config), sort_keys=False))

    try:
        n_cells = prepare_data(plan, data, log)
        if config.scheduler is not None:  # pretraining runs and cells as tasks of a Dask cluster
            from photossl.study.dask_run import run_on_dask

            counts, pretrain_time, grid_time = run_on_dask(plan, log, selected)
        else:
            counts, pretrain_time, grid_time = run_here(plan, log, selected)
    except KeyboardInterrupt:
        log(f"study {config.name}: interrupted; finished cells are kept, rerun the same command to resume")
        raise

    rows, metric = results_rows(plan)
    csv_path, _ = write_results(plan, rows, metric)
    summary: dict[str, Any] = {
        "study": config.name,
        "out": str(plan.out),
        "data": plan.describe_data(),
        "n_cells": n_cells,
        "metric": metric,
        "cells": {"planned": len(plan.cells), **counts},
        "failed_cells": [r["method"] + f"__b{r['budget']}__s{r['seed']}: {r['error']}" for r in rows
                         if r["status"] != "ok"],
        "pretraining": {job.name: {"labels": job.labels, "status": job.status, "error": job.error,
                                   "wall_time_s_this_call": job.wall_time_s} for job in plan.jobs.values()},
        "wall_time_s_this_call": {"pretraining": round(pretrain_time, 1), "grid": round(grid_time, 1)},
        "hardware_at_start": at_start,
        "torch_threads_per_run": config.threads,
        "scheduler": config.scheduler,
    }
    costs = label_costs(plan)
    if costs:  # what the cheap-label methods' rough labels cost, in exact labels
        summary["label_cost"] = costs
    efficiency_lines: list[str] = []
    if metric is not None:
        summary["mean_over_seeds"] = aggregate(rows, metric)
        efficiency, efficiency_lines = label_efficiency(plan, rows, metric)
        summary.update(efficiency)
    if metric is not None and config.figures:
        try:
            plot_error_vs_labels(csv_path, plan.out / "figures" / "error_vs_labels", metric, config.at_error,
                                 reference=config.reference)
            log(f"figure {plan.out / 'figures' / 'error_vs_labels'}.png")
        except WriteError:
            raise
        except Exception as err:  # noqa: BLE001
            log(f"figure error_vs_labels: FAILED ({type(err).__name__}: {err})")
        try:
            summary["dos_prediction_figures"] = plot_predictions(plan, rows, metric, log)
        except WriteError:
            raise
        except Exception as err:  # noqa: BLE001
            log(f"figure dos_predictions: FAILED ({type(err).__name__}: {err})")
    if config.diagnostics:
        tick = time.perf_counter()
        try:
            diagnostics = run_diagnostics(plan, log)
            summary["diagnostics"] = {name: diagnostics_summary(d) for name, d in diagnostics.items()}
        except WriteError:
            raise
        except Exception as err:  # noqa: BLE001
            log(f"diagnostics: FAILED ({type(err).__name__}: {err})")
        summary["wall_time_s_this_call"]["diagnostics"] = round(time.perf_counter() - tick, 1)
    summary["wall_time_s_this_call"]["total"] = round(time.perf_counter() - started, 1)
    summary["hardware_at_end"] = hardware()
    write_json_atomic(plan.out / "summary.json", summary)
    for line in efficiency_lines:
        log(line)
    log(f"study {config.name}: {counts['ran']} cells ran ({counts['failed']} failed), {counts['skipped']} skipped; "
        f"results in {csv_path}; {summary['wall_time_s_this_call']['total']:.0f} s")
    return summary
