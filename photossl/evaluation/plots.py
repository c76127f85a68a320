"""Figures of a label-budget study and of learned symmetries, each written as PNG and PDF.

Every plot function takes data and an output path stem ``out`` ("figs/error_vs_labels" writes
figs/error_vs_labels.png and .pdf; a .png / .pdf suffix on ``out`` is dropped). Figures are built on
``matplotlib.figure.Figure`` with the Agg canvas, so nothing touches pyplot's global state or needs a display.

Results tables (see :func:`load_results_table`) have one row per grid cell with at least the columns
``method``, ``budget`` and the metric (``seed`` and others are kept): a list of dicts, an xarray Dataset, or the
path of a CSV or NetCDF file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from photossl.errors import PhotosslError
from photossl.evaluation.metrics import DOS_START, DOS_STOP

FORMATS = ("png", "pdf")
SPREADS = ("minmax", "std")
REQUIRED_COLUMNS = ("method", "budget")


# -- output -----------------------------------------------------------------------------------------------------------
def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: str | Path) -> list[Path]:
    stem = Path(out)
    if stem.suffix.lower() in {f".{fmt}" for fmt in FORMATS}:
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = stem.parent / f"{stem.name}.{fmt}"
        fig.savefig(path, dpi=150)
        paths.append(path)
    return paths


# -- results tables ---------------------------------------------------------------------------------------------------
def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        value = value.strip()
        return float(value) if value else math.nan
    return float(value)


def _rows_from_dataset(ds: xr.Dataset, metric: str) -> list[dict[str, Any]]:
    if metric not in ds.variables:
        raise PhotosslError(f"results dataset has no variable {metric!r}; it has: {', '.join(map(str, ds.variables))}")
    names = [n for n in ("method", "budget", "seed") if n in ds.variables]
    # Works for a flat table (variables along one row dimension) and for a grid (method × budget × seed coords).
    arrays = xr.broadcast(ds[metric], *(ds[n] for n in names))
    flat = [np.asarray(a.values).ravel() for a in arrays]
    rows = []
    for i in range(flat[0].size):
        row = {n: flat[k + 1][i] for k, n in enumerate(names)}
        row[metric] = flat[0][i]
        rows.append(row)
    return rows


def load_results_table(table: Any, metric: str = "dos_rel_l1") -> list[dict[str, Any]]:
    """The rows of a results table as dicts with ``method`` (str), ``budget`` (float) and ``metric`` (float, nan for
    a missing value such as a failed cell), other columns kept as given.

    ``table``: a sequence of dicts, an xarray Dataset, or a path to a .csv (read with the csv module) or .nc file.
    """
    if isinstance(table, (str, Path)):
        path = Path(table)
        if not path.is_file():
            raise PhotosslError(f"results table {path} does not exist")
        if path.suffix.lower() == ".csv":
            with path.open(newline="") as handle:
                rows = [dict(r) for r in csv.DictReader(handle)]
        elif path.suffix.lower() in {".nc", ".netcdf", ".h5"}:
            with xr.open_dataset(path) as ds:
                rows = _rows_from_dataset(ds.load(), metric)
        else:
            raise PhotosslError(f"results table {path} must be a .csv or .nc file")
    elif isinstance(table, xr.Dataset):
        rows = _rows_from_dataset(table, metric)
    elif isinstance(table, Sequence) and all(isinstance(r, Mapping) for r in table):
        rows = [dict(r) for r in table]
    else:
        raise PhotosslError("table must be a list of dicts, an xarray Dataset, or a .csv / .nc path")
    for row in rows:
        missing = [c for c in (*REQUIRED_COLUMNS, metric) if c not in row]
        if missing:
            raise PhotosslError(f"results table rows need the columns {', '.join(missing)}; got {', '.join(row)}")
        row["method"] = str(row["method"])
        row["budget"] = _number(row["budget"])
        row[metric] = _number(row[metric])
    return rows


def _aggregate(rows: list[dict[str, Any]], metric: str, spread: str) -> dict[str, dict[str, np.ndarray]]:
    """Per method, sorted budgets and the mean / lower / upper error over seeds (finite, positive values only)."""
    if spread not in SPREADS:
        raise PhotosslError(f"spread must be one of {', '.join(SPREADS)}; got {spread!r}")
    values: dict[str, dict[float, list[float]]] = {}
    for row in rows:
        err, budget = row[metric], row["budget"]
        if math.isfinite(err) and err > 0 and math.isfinite(budget) and budget > 0:
            values.setdefault(row["method"], {}).setdefault(budget, []).append(err)
    curves = {}
    for method, by_budget in values.items():
        budgets = np.array(sorted(by_budget))
        samples = [np.array(by_budget[b]) for b in budgets]
        mean = np.array([s.mean() for s in samples])
        if spread == "minmax":
            lower = np.array([s.min() for s in samples])
            upper = np.array([s.max() for s in samples])
        else:
            std = np.array([s.std(ddof=1) if s.size > 1 else 0.0 for s in samples])
            lower, upper = mean - std, mean + std
        curves[method] = {"budget": budgets, "mean": mean, "lower": lower, "upper": upper}
    return curves


def budget_at_error(budgets: Any, errors: Any, at_error: float) -> float:
    """The smallest budget at which the curve reaches ``at_error``, interpolating linearly in log-log.

    nan when the curve never comes down to ``at_error`` within the measured budgets, and also when it is already
    below it at the smallest budget (the crossing lies outside the data: no extrapolation).

    Shape: budgets, errors (m,) with budgets increasing -> float.
    """
    b = np.asarray(budgets, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if not (at_error > 0):
        raise PhotosslError(f"at_error must be > 0, got {at_error!r}")
    if b.shape != e.shape or b.ndim != 1:
        raise PhotosslError(f"budgets and errors must be (m,) arrays of one length, got {b.shape} and {e.shape}")
    keep = np.isfinite(b) & np.isfinite(e) & (b > 0) & (e > 0)
    b, e = b[keep], e[keep]
    if b.size == 0:
        return math.nan
    if np.any(np.diff(b) <= 0):
        raise PhotosslError("budgets must be strictly increasing")
    if e[0] <= at_error:
        return float(b[0]) if math.isclose(e[0], at_error, rel_tol=1e-9) else math.nan
    log_b, log_e, log_t = np.log(b), np.log(e), math.log(at_error)
    for i in range(b.size - 1):
        if e[i] > at_error >= e[i + 1]:
            t = (log_t - log_e[i]) / (log_e[i + 1] - log_e[i])
            return float(np.exp(log_b[i] + t * (log_b[i + 1] - log_b[i])))
    return math.nan


def _factors(
    curves: dict[str, dict[str, np.ndarray]], reference: str, at_error: float | None
) -> tuple[float | None, dict[str, float], dict[str, float]]:
    if reference not in curves:
        return at_error, {}, {}
    if at_error is None:
        at_error = float(curves[reference]["mean"][-1])  # the reference's error at its largest budget
    budgets = {m: budget_at_error(c["budget"], c["mean"], at_error) for m, c in curves.items()}
    ref_budget = budgets[reference]
    factors = {m: ref_budget / b for m, b in budgets.items() if m != reference}
    return at_error, factors, budgets


def label_saving_factors(
    table: Any,
    metric: str = "dos_rel_l1",
    at_error: float | None = None,
    reference: str = "supervised",
) -> dict[str, float]:
    """Label-saving factor of every method against ``reference``: N_reference(ε) / N_method(ε), the ratio of the
    budgets at which the mean-over-seeds curves reach the error ε (see :func:`budget_at_error`; nan where a curve
    does not reach ε inside its measured budgets). ε defaults to the reference's error at its largest budget
    (e.g. supervised with 3200 labels): a factor 4 then means the method reaches that error with 800 labels.

    Returns {method: factor} for every method but the reference ({} if the reference is absent).
    """
    curves = _aggregate(load_results_table(table, metric), metric, "minmax")
    return _factors(curves, reference, at_error)[1]


def error_cuts(table: Any, metric: str = "dos_rel_l1", reference: str = "supervised") -> dict[str, dict[int, float]]:
    """Relative error cut of every method against ``reference`` at each budget both measured:
    1 − mean_method / mean_reference over seeds (0.2 = a 20 % lower error; negative = worse).

    Returns {method: {budget: cut}} for every method but the reference ({} if the reference is absent).
    """
    curves = _aggregate(load_results_table(table, metric), metric, "minmax")
    if reference not in curves:
        return {}
    ref = dict(zip(curves[reference]["budget"].tolist(), curves[reference]["mean"].tolist()))
    return {method: {int(b): 1.0 - m / ref[b] for b, m in zip(c["budget"].tolist(), c["mean"].tolist()) if b in ref}
            for method, c in curves.items() if method != reference}


def plot_error_vs_labels(
    table: Any,
    out: str | Path,
    metric: str = "dos_rel_l1",
    at_error: float | None = None,
    *,
    reference: str = "supervised",
    spread: str = "minmax",
    title: str | None = None,
) -> dict[str, float]:
    """Test error against number of labels (log-log), mean over seeds with a band for the spread (min–max or ±1
    std), one line per method; the label-saving factors against ``reference`` at error ``at_error`` (default: the
    reference's error at its largest budget) are marked and listed on the figure and returned, as from
    :func:`label_saving_factors`."""
    rows = load_results_table(table, metric)
    curves = _aggregate(rows, metric, spread)
    if not curves:
        raise PhotosslError(f"the results table has no finite, positive values of {metric!r} to plot")
    at_error, factors, budgets = _factors(curves, reference, at_error)

    fig = _new_figure(6.0, 4.5)
    ax = fig.add_subplot()
    order = sorted(curves, key=lambda m: (m != reference, m))
    colours = {m: f"C{i % 10}" for i, m in enumerate(order)}
    for method in order:
        c = curves[method]
        ax.plot(c["budget"], c["mean"], "o-", color=colours[method], label=method, lw=1.8, ms=4)
        ax.fill_between(c["budget"], c["lower"], c["upper"], color=colours[method], alpha=0.2, lw=0)
    if at_error is not None:
        ax.axhline(at_error, color="0.4", ls="--", lw=0.8)
        for method, budget in budgets.items():
            if math.isfinite(budget):
                ax.plot([budget], [at_error], marker="v", color=colours[method], ms=8, mec="k", mew=0.5)
    all_budgets = np.unique(np.concatenate([c["budget"] for c in curves.values()]))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(all_budgets)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("number of labelled cells")
    ax.set_ylabel(metric)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    if factors:
        lines = [f"label saving vs {reference} at {metric} = {at_error:.3g}:"]
        lines += [f"{m}: {'n/a' if not math.isfinite(f) else f'{f:.2g}x'}" for m, f in sorted(factors.items())]
        ax.text(0.02, 0.02, "\n".join(lines), transform=ax.transAxes, fontsize=7, va="bottom", ha="left",
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
    spread_name = "min-max" if spread == "minmax" else "±1 std"
    ax.set_title(title or f"{metric} vs labels (mean, {spread_name} over seeds)", fontsize=10)
    _save(fig, out)
    return factors


# -- symmetry diagnostics ---------------------------------------------------------------------------------------------
def _diagnostic_values(diagnostics: Any, metric: str) -> dict[str, float]:
    if isinstance(diagnostics, xr.Dataset):
        if metric not in diagnostics:
            return {}
        return {str(t): float(v) for t, v in zip(diagnostics["transformation"].values, diagnostics[metric].values)}
    if isinstance(diagnostics, Mapping) and "transformations" in diagnostics:
        return {
            f"{r['group']}:{r['name']}": (math.nan if r.get(metric) is None else float(r[metric]))
            for r in diagnostics["transformations"]
        }
    raise PhotosslError("each method's diagnostics must be a symmetry_diagnostics() dict or its xarray Dataset")


def plot_symmetry_errors(
    diagnostics_by_method: Mapping[str, Any],
    out: str | Path,
    metrics: Sequence[str] = ("wahba_error", "invariance_error"),
) -> list[Path]:
    """Grouped bars, one panel per metric: the value for every transformation (x) and method (bar colour).

    ``diagnostics_by_method``: {method: output of symmetry_diagnostics() or diagnostics_to_dataset()}.
    Returns the written paths.
    """
    if not diagnostics_by_method:
        raise PhotosslError("diagnostics_by_method is empty")
    if not metrics:
        raise PhotosslError("metrics must name at least one diagnostic")
    methods = list(diagnostics_by_method)
    values = {m: {k: _diagnostic_values(diagnostics_by_method[m], k) for k in metrics} for m in methods}
    transformations: list[str] = []
    for m in methods:
        for k in metrics:
            transformations += [t for t in values[m][k] if t not in transformations]
    width = 0.8 / len(methods)
    x = np.arange(len(transformations))
    fig = _new_figure(max(6.0, 0.45 * len(transformations) * max(1, len(methods) / 2)), 2.6 * len(metrics) + 0.6)
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics):
        for i, method in enumerate(methods):
            heights = [values[method][metric].get(t, math.nan) for t in transformations]
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, heights, width, label=method, color=f"C{i % 10}")
        ax.set_ylabel(metric)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, ncols=min(len(methods), 4))
    axes[-1].set_xticks(x, transformations, rotation=45, ha="right", fontsize=8)
    axes[0].set_title("learned symmetry per transformation", fontsize=10)
    return _save(fig, out)


# -- embeddings and predictions ---------------------------------------------------------------------------------------
def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x, dtype=np.float64)


def plot_embedding_orbits(
    embeddings: Any,
    orbit_labels: Any,
    out: str | Path,
    element_names: Sequence[str] | None = None,
    max_orbits: int = 10,
) -> list[Path]:
    """The first two principal components (numpy SVD of the centred embeddings) of a few cells and their group
    orbits; the points of one orbit share a colour and are joined in the order given (group label order from
    :func:`~photossl.evaluation.orbit_embeddings`), the first point (the untransformed cell) drawn larger.

    Shape: embeddings (m, d), orbit_labels (m,) -> written paths. At most ``max_orbits`` orbits are drawn.
    """
    z = _numpy(embeddings)
    labels = np.asarray(orbit_labels)
    if z.ndim != 2 or labels.shape != (z.shape[0],):
        raise PhotosslError(f"embeddings must be (m, d) and orbit_labels (m,); got {z.shape} and {labels.shape}")
    if element_names is not None and len(element_names) != z.shape[0]:
        raise PhotosslError(f"element_names must have {z.shape[0]} entries, got {len(element_names)}")
    kept = list(dict.fromkeys(labels.tolist()))[:max_orbits]
    mask = np.isin(labels, kept)
    z, labels = z[mask], labels[mask]
    names = None if element_names is None else [n for n, k in zip(element_names, mask) if k]
    centred = z - z.mean(axis=0)
    _, singular, vh = np.linalg.svd(centred, full_matrices=False)
    n_comp = min(2, vh.shape[0])
    coords = np.zeros((z.shape[0], 2))
    coords[:, :n_comp] = centred @ vh[:n_comp].T
    variance = singular**2 / max((singular**2).sum(), np.finfo(float).tiny)

    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    for i, orbit in enumerate(kept):
        idx = np.flatnonzero(labels == orbit)
        pts = coords[idx]
        colour = f"C{i % 10}"
        ring = np.vstack([pts, pts[:1]])
        ax.plot(ring[:, 0], ring[:, 1], "-", color=colour, lw=1, alpha=0.7)
        ax.scatter(pts[1:, 0], pts[1:, 1], color=colour, s=22, zorder=3)
        ax.scatter(pts[:1, 0], pts[:1, 1], color=colour, s=70, marker="*", edgecolors="k", lw=0.5, zorder=4,
                   label=f"cell {orbit}")
        if names is not None:
            for j, p in zip(idx, pts):
                ax.annotate(names[j], p, fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"PC 1 ({100 * variance[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * variance[1]:.0f} % of variance)" if variance.size > 1 else "PC 2")
    ax.legend(fontsize=7, loc="best")
    ax.set_title("embeddings of cells (stars) and their group orbits", fontsize=10)
    return _save(fig, out)


def plot_dos_predictions(
    freq: Any,
    true: Any,
    pred: Any,
    out: str | Path,
    n: int = 4,
    start: int = DOS_START,
    stop: int = DOS_STOP,
) -> list[Path]:
    """Predicted against true DOS for the first ``n`` cells, each panel titled with its relative L1 error over
    bins start..stop−1 (the SIB-CL metric); bins outside that window are shaded.

    Shape: freq (F,) or None (bin index), true, pred (B, F) -> written paths.
    """
    y, y_hat = _numpy(true), _numpy(pred)
    if y.ndim != 2 or y.shape != y_hat.shape:
        raise PhotosslError(f"true and pred must both be (B, F), got {y.shape} and {y_hat.shape}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PhotosslError(f"n must be a positive integer, got {n!r}")
    n_freq = y.shape[1]
    if not 0 <= start < stop <= n_freq:
        raise PhotosslError(f"need 0 <= start < stop <= F = {n_freq}; got start={start}, stop={stop}")
    w = np.arange(n_freq, dtype=np.float64) if freq is None else _numpy(freq)
    if w.shape != (n_freq,):
        raise PhotosslError(f"freq must have shape ({n_freq},), got {w.shape}")
    count = min(n, y.shape[0])
    cols = min(count, 2)
    rows = -(-count // cols)
    fig = _new_figure(4.2 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    window = slice(start, stop)
    for i in range(count):
        ax = axes[i]
        err = np.abs(y_hat[i, window] - y[i, window]).sum() / np.abs(y[i, window]).sum()
        if start > 0:
            ax.axvspan(w[0], w[start], color="0.9", lw=0)
        if stop < n_freq:
            ax.axvspan(w[stop - 1], w[-1], color="0.9", lw=0)
        ax.plot(w, y[i], color="k", lw=1.2, label="true")
        ax.plot(w, y_hat[i], color="C3", lw=1.2, ls="--", label="predicted")
        ax.set_title(f"cell {i}: relative L1 {100 * err:.2f} %", fontsize=9)
        ax.set_xlabel("scaled frequency ω√ε̄ a/2πc" if freq is not None else "bin")
        ax.set_ylabel("DOS")
    for ax in axes[count:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    return _save(fig, out)
