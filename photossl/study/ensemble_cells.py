"""Grid cells of one network method fine-tuned together (:func:`photossl.finetune.ensemble.finetune_ensemble`), each
with the record a cell run alone writes (:func:`photossl.study.execute.run_cell`)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from photossl.files import WriteError
from photossl.study.plan import (
    Cell,
    StudyPlan,
    cell_dataset,
    cell_path,
    write_json_atomic,
)


def ensemble_batches(plan: StudyPlan, todo: list[tuple[Cell, str]]) -> tuple[list[list[tuple[Cell, str]]], list]:
    """(batches of cells to fine-tune together, cells to run alone): up to ``finetune_ensemble`` cells of one
    network method whose pretraining (if any) is done, in the grid's order; classical baselines, cells of a failed
    pretraining and a method's lone cell run alone."""
    size = plan.config.finetune_ensemble
    by_label: dict[str, list[tuple[Cell, str]]] = {}
    alone = []
    for cell, fingerprint in todo:
        kind = plan.config.method_kind(cell.label)
        job = plan.jobs.get(plan.job_of.get(cell.label, ""))
        unfinished = job is not None and job.status != "ok"
        if size < 2 or kind == "classical" or plan.config.track != "photonics" or unfinished:
            alone.append((cell, fingerprint))
        else:
            by_label.setdefault(cell.label, []).append((cell, fingerprint))
    batches = []
    for cells in by_label.values():
        for start in range(0, len(cells), size):
            batch = cells[start: start + size]
            if len(batch) > 1:
                batches.append(batch)
            else:
                alone.extend(batch)
    return batches, alone


def run_cells_together(plan: StudyPlan, batch: list[tuple[Cell, str]], log: Callable[[str], None],
                       datasets: dict) -> list[dict]:
    """Fine-tune the cells of ``batch`` as one ensemble and write each cell's record (ok or failed); never raises
    for a failed cell. ``datasets``: opened datasets by (data, target, polarization), shared between cells."""
    from photossl.finetune.ensemble import finetune_ensemble

    tick = time.perf_counter()
    records: list[dict[str, Any]] = []
    configs, outs = [], []
    for cell, fingerprint in batch:
        out = plan.out / "finetune" / cell.label / f"b{cell.budget}-s{cell.seed}"
        records.append({"id": cell.id, "method": cell.label, "budget": cell.budget, "seed": cell.seed,
                        "fingerprint": fingerprint, "out": str(out)})
        configs.append(plan.cell_configs[cell])
        outs.append(out)
    try:
        dataset = cell_dataset(plan, configs[0], datasets)
        results = finetune_ensemble(configs, outs, overwrite=True, dataset=dataset)
    except WriteError:
        raise
    except Exception as err:  # noqa: BLE001 - the whole ensemble failed: every cell says why
        results = [err] * len(configs)
    share = (time.perf_counter() - tick) / len(batch)
    finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for record, result in zip(records, results):
        if isinstance(result, Exception):
            _failed(record, result)
        else:
            record.update(status="ok", metrics=result)
    for record, (cell, _) in zip(records, batch):
        if record.get("status") != "ok":
            log(f"cell {cell.id}: FAILED ({record['error']})")
        record["wall_time_s"] = round(share, 3)  # the cell's share of the ensemble's time
        record["finished"] = finished
        write_json_atomic(cell_path(plan, cell), record)
    return records


def _failed(record: dict, err: BaseException) -> None:
    record.update(status="failed", error=f"{type(err).__name__}: {err}",
                  traceback="".join(traceback.format_exception(type(err), err, err.__traceback__)))
