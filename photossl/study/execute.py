"""One unit of a study's work, as this process or a Dask worker runs it: one pretraining run (:func:`run_job`) or
one fine-tuning cell (:func:`run_cell`), each writing its own outputs atomically into the study folder, and the log
they report to."""

from __future__ import annotations

import json
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from photossl.errors import PhotosslError
from photossl.files import WriteError, append_text
from photossl.finetune import finetune
from photossl.finetune.vision import finetune_vision
from photossl.study.cheap_label import mark_finished_cheap_label, run_cheap_label_job
from photossl.study.plan import (
    Cell,
    PretrainJob,
    StudyPlan,
    cell_dataset,
    cell_path,
    file_sha256,
    write_json_atomic,
)
from photossl.training import pretrain


class StudyLog:
    """One-line messages to stderr (through ``echo``) and to STUDY/study.log with a timestamp."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None):
        self.path = path
        self.echo = echo or (lambda message: print(message, file=sys.stderr))

    def __call__(self, message: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        append_text(self.path, f"{stamp} {message}\n")
        self.echo(message)


def run_job(plan: StudyPlan, job: PretrainJob, log: Callable[[str], None]) -> None:
    """Run (or resume) one pretraining run and set its status; never raises for a failure other than a failed write."""
    if job.kind == "cheap-label":  # rough labels, then the network trained on them
        run_cheap_label_job(plan, job, log)
        return
    run_dir = plan.pretrain_dir / job.name
    tick = time.perf_counter()
    log(f"pretrain {job.name} (for {', '.join(job.labels)}) -> {run_dir}")
    try:
        summary = pretrain(job.config, run_dir, resume=True, echo=log)
        if summary.get("status") not in ("complete", None):
            raise PhotosslError(f"pretraining ended with status {summary.get('status')}")
        job.status = "ok"
        job.checkpoint_sha256 = file_sha256(run_dir / "checkpoint.pt")
        probe = summary.get("final_probe_rel_l1")
        log(f"pretrain {job.name}: done in {time.perf_counter() - tick:.0f} s"
            + (f", ridge-probe validation DOS error {probe:.4g}" if probe is not None else ""))
    except WriteError:  # a full disk or a refused permission stops the study: rerun once it is fixed
        raise
    except Exception as err:  # noqa: BLE001 - a failed method must not stop the others
        job.status, job.error = "failed", f"{type(err).__name__}: {err}"
        log(f"pretrain {job.name}: FAILED ({job.error}); its cells will be reported as failed")
    job.wall_time_s = round(time.perf_counter() - tick, 3)


def mark_finished_pretraining(plan: StudyPlan) -> None:
    """Mark as ok the pretraining runs that this call did not run but another finished (their run.json says so)."""
    for job in plan.jobs.values():
        mark_finished_job(plan, job)


def mark_finished_job(plan: StudyPlan, job: PretrainJob) -> None:
    """Mark ``job`` ok (with its checkpoint's sha256) when it is pending and its run has finished."""
    if job.kind == "cheap-label":
        mark_finished_cheap_label(plan, job)
        return
    run_dir = plan.pretrain_dir / job.name
    if job.status != "pending" or not (run_dir / "checkpoint.pt").exists():
        return
    try:
        status = json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return
    if status == "complete":
        job.status = "ok"
        job.checkpoint_sha256 = file_sha256(run_dir / "checkpoint.pt")


def run_cell(plan: StudyPlan, cell: Cell, fingerprint: str, log: Callable[[str], None],
             datasets: dict | None = None) -> dict:
    """Fine-tune one grid cell and write its record (ok or failed); never raises for a failed run.

    ``datasets``: a cache of the opened datasets (photonics) or loaded images (vision) that cells read, shared
    between cells."""
    out = plan.out / "finetune" / cell.label / f"b{cell.budget}-s{cell.seed}"
    record: dict[str, Any] = {"id": cell.id, "method": cell.label, "budget": cell.budget, "seed": cell.seed,
                              "fingerprint": fingerprint, "out": str(out)}
    tick = time.perf_counter()
    job = plan.jobs.get(plan.job_of.get(cell.label, ""))
    try:
        if job is not None and job.status != "ok":
            raise PhotosslError(f"pretraining {job.name} failed: {job.error}")
        config = plan.cell_configs[cell]
        dataset = cell_dataset(plan, config, datasets)
        run = finetune_vision if plan.config.track == "vision" else finetune
        metrics = run(config, out, overwrite=True, dataset=dataset)
        record.update(status="ok", metrics=metrics)
    except WriteError:
        raise
    except Exception as err:  # noqa: BLE001 - reported in the record and the log, the grid goes on
        record.update(status="failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        log(f"cell {cell.id}: FAILED ({record['error']})")
    record["wall_time_s"] = round(time.perf_counter() - tick, 3)
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json_atomic(cell_path(plan, cell), record)
    return record
