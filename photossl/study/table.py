"""The results table of a study: one row per grid cell (method, budget, seed, status, test metrics, validation
error, selected epoch, epochs run, wall time), as CSV and NetCDF, means over seeds, and how many labels each method
saves (label-saving factors and error cuts against the reference, for summary.json, STUDY/error_cuts.md and the
log)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from photossl.config import config_to_dict
from photossl.files import replace_atomically, write_text_atomic
from photossl.study.plan import StudyPlan, cell_path, read_cell

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

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})

    replace_atomically(csv_path, write_csv)

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
    replace_atomically(nc_path, lambda tmp: dataset.to_netcdf(tmp, engine="h5netcdf"))
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


def label_efficiency(plan: StudyPlan, rows: list[dict], metric: str) -> tuple[dict[str, Any], list[str]]:
    """summary.json's entries on label efficiency, and the lines the study prints about them; writes
    STUDY/error_cuts.md.

    ``label_saving_factors``: {method: factor or None} against the reference at ``at_error``; ``label_saving``: the
    reference, the error, the reference's budget, the extrapolation bound, and per method ``methods``: {factor,
    budget, extrapolated, reached, reason} (see :func:`photossl.evaluation.label_saving`);
    ``error_cut_vs_reference``: {method: {budget: cut}};
    ``error_cut_seed_spread``: {method: {budget: {min, max, n}}} of the paired per-seed cuts.
    """
    from photossl.evaluation.label_efficiency import (
        error_cut_table,
        error_cuts_markdown,
        label_saving,
        saving_lines,
    )

    config = plan.config
    ok = [r for r in rows if r["status"] == "ok"]
    saving = label_saving(ok, metric, config.at_error, config.reference)
    cuts = error_cut_table(ok, metric, config.reference)
    markdown = error_cuts_markdown(ok, metric, config.reference)
    write_text_atomic(plan.out / "error_cuts.md", markdown)
    details = saving.to_dict()
    entries = {
        "label_saving": details,
        "label_saving_factors": {m: d["factor"] for m, d in details["methods"].items()},
        "error_cut_vs_reference": {m: {str(b): c["cut"] for b, c in by.items()} for m, by in cuts.items()},
        "error_cut_seed_spread": {m: {str(b): {k: c[k] for k in ("min", "max", "n")} for b, c in by.items()}
                                  for m, by in cuts.items()},
    }
    lines = saving_lines(saving)
    if cuts:
        lines.append(f"error cut vs {saving.reference} (1 - mean / mean of {saving.reference}, %; min ... max of "
                     f"the per-seed cuts), also in {plan.out / 'error_cuts.md'}:")
        lines += [line for line in markdown.splitlines() if line.startswith("|")]
    return entries, lines
