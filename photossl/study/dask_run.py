"""A study's pretraining runs and fine-tuning cells as tasks of a Dask cluster (``scheduler`` in the config,
``photossl study --scheduler``; see :mod:`photossl.cluster`).

This process plans the study, prepares the data (its chunks are tasks too when it is generated), submits one task per
unfinished pretraining run and one per grid cell, and then writes the table, summary, figures and diagnostics as a
local run does. A cell of a pretrained method depends on its pretraining task and starts once that has finished.
Every task checks what is already on disk before it works, as a rerun does: a finished pretraining run is only read,
a cell whose record says ok with the same fingerprint is returned as it is. Tasks write their own outputs (atomically)
into the study folder, which the workers must see under the same path; what they would log comes back with their
result and goes to study.log here. A worker that dies takes its task with it and Dask reruns it elsewhere; when Dask
gives up, the cell is recorded as failed and a rerun of the study resumes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from photossl.files import WriteError
from photossl.study.config import StudyConfig
from photossl.study.execute import (
    mark_finished_job,
    mark_finished_pretraining,
    run_cell,
    run_job,
)
from photossl.study.plan import (
    Cell,
    StudyPlan,
    cell_fingerprint,
    cell_finished,
    cell_path,
    read_cell,
    write_json_atomic,
)

# Datasets opened by the cells a worker process ran, by (data, target, polarization): the next cell on the same
# data opens nothing. At most this many stay open.
_OPEN_DATASETS: dict = {}
_MAX_OPEN_DATASETS = 4


def absolute_paths(config: StudyConfig, out: str | Path, data: str | Path | None) -> tuple[Path, Path | None]:
    """``out`` and the data folder as absolute paths, as workers on other machines must receive them (a bundled
    dataset already is one). The study's runs and cells are keyed by these paths, so a study begun in this process
    with a relative folder is resumed on a cluster only under the same absolute spelling."""
    source = data if data is not None else config.data
    if source is not None and not str(source).startswith("bundled"):
        data = Path(source).absolute()
    return Path(out).absolute(), data


# --------------------------------------------------------------------------------------------------- the tasks
def _job_state(job) -> dict[str, Any]:
    return {"status": job.status, "error": job.error, "checkpoint_sha256": job.checkpoint_sha256,
            "wall_time_s": job.wall_time_s}


def pretrain_task(plan: StudyPlan, name: str) -> dict[str, Any]:
    """Run pretraining job ``name`` on a worker unless it has finished; its state and log lines."""
    job = plan.jobs[name]
    messages: list[str] = []
    mark_finished_job(plan, job)
    if job.status == "ok":
        messages.append(f"pretrain {job.name}: already finished")
    else:
        run_job(plan, job, messages.append)
    return {**_job_state(job), "messages": messages}


def cell_task(plan: StudyPlan, cell: Cell, job_state: dict | None) -> dict[str, Any]:
    """Fine-tune ``cell`` on a worker unless its record says it is done; ``job_state``: the result of its
    pretraining task (None when the plan already holds it)."""
    job = plan.jobs.get(plan.job_of.get(cell.label, ""))
    if job is not None and job_state is not None:
        job.status, job.error, job.checkpoint_sha256 = (job_state[k] for k in ("status", "error", "checkpoint_sha256"))
    fingerprint = cell_fingerprint(plan, cell)
    record = read_cell(cell_path(plan, cell))
    if cell_finished(record, fingerprint):
        return {"ran": False, "record": record, "messages": []}
    messages: list[str] = []
    if record is not None and record.get("status") == "ok":
        messages.append(f"cell {cell.id}: settings changed since it ran; running it again")
    record = run_cell(plan, cell, fingerprint, messages.append, _OPEN_DATASETS)
    while len(_OPEN_DATASETS) > _MAX_OPEN_DATASETS:
        _OPEN_DATASETS.pop(next(iter(_OPEN_DATASETS))).close()
    return {"ran": True, "record": record, "messages": messages}


# --------------------------------------------------------------------------------------------------- the driver
def _failed_record(plan: StudyPlan, cell: Cell, error: str) -> dict[str, Any]:
    """The record of a cell whose task never returned (its workers kept dying, or its pretraining task did)."""
    from datetime import datetime, timezone

    record = {"id": cell.id, "method": cell.label, "budget": cell.budget, "seed": cell.seed,
              "fingerprint": cell_fingerprint(plan, cell),
              "out": str(plan.out / "finetune" / cell.label / f"b{cell.budget}-s{cell.seed}"),
              "status": "failed", "error": error, "wall_time_s": None,
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json_atomic(cell_path(plan, cell), record)
    return record


def run_on_dask(plan: StudyPlan, log: Callable[[str], None],
                only: set[str] | None = None) -> tuple[dict[str, int], float, float]:
    """Pretraining runs and the grid as tasks of ``plan.config.scheduler``: (cell counts, seconds until the last
    pretraining run finished, seconds until the last cell did)."""
    from tqdm.auto import tqdm

    from photossl.cluster import as_completed, connect, task_key

    address = plan.config.scheduler
    started = time.perf_counter()
    scope = str(plan.out)
    mark_finished_pretraining(plan)  # finished runs need no task, and their cells' fingerprints are known now
    counts = {"ran": 0, "skipped": 0, "failed": 0}
    with connect(address) as client:
        jobs: dict = {}  # future -> job
        for job in plan.jobs.values():
            if job.status == "pending" and (only is None or only.intersection(job.labels)):
                future = client.submit(pretrain_task, plan, job.name, key=task_key("pretrain", job.name, scope),
                                       pure=False)
                jobs[future] = job
        pending_job = {job.name: future for future, job in jobs.items()}
        cells: dict = {}  # future -> cell
        before: dict = {}  # cell -> its record when submitted: a task that finds another was written in this call
        mine = [cell for cell in plan.cells if only is None or cell.label in only]
        for cell in mine:
            job = plan.jobs.get(plan.job_of.get(cell.label, ""))
            upstream = pending_job.get(job.name) if job is not None else None
            if upstream is None:  # its fingerprint is known here: a finished cell is not even submitted
                if cell_finished(read_cell(cell_path(plan, cell)), cell_fingerprint(plan, cell)):
                    counts["skipped"] += 1
                    continue
            future = client.submit(cell_task, plan, cell, upstream, key=task_key("cell", cell.id, scope), pure=False)
            cells[future] = cell
            before[cell] = read_cell(cell_path(plan, cell))
        if counts["skipped"]:
            log(f"resuming: {counts['skipped']} of {len(mine)} cells already done")
        log(f"dask {address}: {len(jobs)} pretraining runs and {len(cells)} cells submitted")
        pretrain_time = 0.0
        bar = tqdm(total=len(cells), desc="study cells", unit="cell", disable=not plan.config.progress,
                   dynamic_ncols=True)
        futures = [*jobs, *cells]
        try:
            for future in as_completed(client, futures):
                if future in jobs:
                    _job_done(jobs[future], future, log)
                    pretrain_time = time.perf_counter() - started
                    continue
                _cell_done(plan, cells[future], future, log, counts, before[cells[future]])
                bar.update(1)
        finally:
            bar.close()
            client.cancel([future for future in futures if not future.done()])
    return counts, pretrain_time, time.perf_counter() - started


def _job_done(job, future, log: Callable[[str], None]) -> None:
    try:
        state = future.result()
    except (WriteError, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - its workers died: its cells fail, the others go on
        job.status, job.error = "failed", f"{type(err).__name__}: {err}"
        log(f"pretrain {job.name}: FAILED ({job.error}); its cells will be reported as failed")
        return
    for message in state.pop("messages"):
        log(message)
    job.status, job.error, job.checkpoint_sha256, job.wall_time_s = (
        state[k] for k in ("status", "error", "checkpoint_sha256", "wall_time_s"))


def _cell_done(plan: StudyPlan, cell: Cell, future, log: Callable[[str], None], counts: dict[str, int],
               before: dict | None) -> None:
    try:
        result = future.result()
    except (WriteError, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - recorded as failed, the grid goes on
        record = _failed_record(plan, cell, f"{type(err).__name__}: {err}")
        log(f"cell {cell.id}: FAILED ({record['error']})")
        counts["ran"] += 1
        counts["failed"] += 1
        return
    for message in result["messages"]:
        log(message)
    record = result["record"]
    if not result["ran"] and record == before:  # done before this call (by another process sharing the folder)
        counts["skipped"] += 1
        return
    # else it ran in this call; perhaps its result was lost with a dead worker and the rerun task found its record
    counts["ran"] += 1
    if record["status"] != "ok":
        counts["failed"] += 1
        return
    metrics = record["metrics"]
    metric = metrics["metric"]
    log(f"cell {cell.id}: test {metric} {metrics[metric]:.4g}, selected epoch {metrics['selected_epoch']}, "
        f"{record['wall_time_s']:.0f} s")

