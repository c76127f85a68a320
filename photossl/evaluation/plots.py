"""Figures of a label-budget study and of learned symmetries, each written as PNG and PDF.

Every plot function takes data and an output path stem ``out`` ("figs/error_vs_labels" writes
figs/error_vs_labels.png and .pdf; a .png / .pdf suffix on ``out`` is dropped). Figures are built on
``matplotlib.figure.Figure`` with the Agg canvas, so nothing touches pyplot's global state or needs a display.

Results tables are read, and the numbers drawn (curves over seeds, label-saving factors), by
:mod:`photossl.evaluation.label_efficiency`; this module only draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, ScalarFormatter

from photossl.errors import PhotosslError
from photossl.evaluation.label_efficiency import (
    MAX_EXTRAPOLATION,
    Saving,
    error_curves,
    fold_long_runs,
    folded_reference,
    format_error,
    format_factor,
    load_results_table,
    saving_from_curves,
)
from photossl.evaluation.metrics import DOS_START, DOS_STOP
from photossl.files import replace_atomically

FORMATS = ("png", "pdf")

# Axis label and scale of each results metric (relative errors are shown in percent).
METRIC_AXES = {
    "dos_rel_l1": ("DOS error (relative L1, %)", 100.0),
    "dos_eldiff_mae": ("DOS error (mean absolute, DOS / √ε̄)", 1.0),
    "dos_mae": ("DOS error (mean absolute, DOS / √ε̄)", 1.0),
    "gaps_mae": ("gap error (mean absolute, ωa/2πc)", 1.0),
    "gaps_rel": ("gap error (pooled relative, %)", 100.0),
    "bands_rel_l1": ("band error (relative L1, %)", 100.0),
    "bands_mae": ("band error (mean absolute, ωa/2πc)", 1.0),
    "accuracy": ("accuracy (%)", 100.0),
}
# Axis label of each learned-symmetry diagnostic.
DIAGNOSTIC_AXES = {
    "invariance_error": "invariance error\n(‖z_g − z‖ / ‖z − z′‖)",
    "wahba_error": "Wahba error\n(best rotation, normalised z)",
    "wahba_error_raw": "Wahba error\n(best rotation, raw z)",
    "gamma_f": "γ_f (CARE equivariance)",
}


def metric_axis(metric: str) -> tuple[str, float]:
    """(axis label in words with units, factor from stored values to shown ones) of a results metric."""
    if metric in METRIC_AXES:
        return METRIC_AXES[metric]
    return (f"{metric.replace('_', ' ')} (relative, %)", 100.0) if "rel" in metric else (metric.replace("_", " "), 1.0)


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
        replace_atomically(path, lambda tmp, fmt=fmt: fig.savefig(tmp, dpi=150, format=fmt))
        paths.append(path)
    return paths


# -- label-budget studies --------------------------------------------------------------------------------------------
def plot_error_vs_labels(
    table: Any,
    out: str | Path,
    metric: str = "dos_rel_l1",
    at_error: float | None = None,
    *,
    reference: str = "supervised",
    spread: str = "minmax",
    title: str | None = None,
    max_extrapolation: float = MAX_EXTRAPOLATION,
    fold_long: bool = True,
) -> dict[str, float]:
    """Test error against number of labels (log-log), mean over seeds with a band for the spread (min–max or ±1
    std), one line per method; the label-saving factors against ``reference`` at error ``at_error`` (default: the
    reference's error at its largest budget) are marked on the dashed line (hollow and joined by a dotted line when
    extrapolated), listed in a box, and returned as from
    :func:`~photossl.evaluation.label_efficiency.label_saving_factors`.

    ``fold_long``: join ``X-long`` runs onto X's curve (:func:`fold_long_runs`; their points are drawn hollow and
    the legend names them)."""
    rows = load_results_table(table, metric)
    if fold_long:
        rows = fold_long_runs(rows)
        reference = folded_reference(reference, {r["method"] for r in rows})
    curves = error_curves(rows, metric, spread)
    if not curves:
        raise PhotosslError(f"the results table has no finite, positive values of {metric!r} to plot")
    saving = saving_from_curves(error_curves(rows, metric), reference, at_error, metric, max_extrapolation)

    fig = _new_figure(8.0, 5.4)
    ax = fig.add_subplot()
    order = sorted(curves, key=lambda m: (m != reference, m))
    colours = {m: f"C{i % 10}" for i, m in enumerate(order)}
    for method in order:
        c, colour = curves[method], colours[method]
        label = method
        if c.folded:
            label += f" ({', '.join(f'{b:.0f}' for b in c.folded)}: {c.folded_from})"
        ax.plot(c.budget, c.mean, "-", color=colour, label=label, lw=1.8)
        ax.fill_between(c.budget, c.lower, c.upper, color=colour, alpha=0.2, lw=0)
        own = ~np.isin(c.budget, c.folded)
        ax.plot(c.budget[own], c.mean[own], "o", color=colour, ms=4)
        ax.plot(c.budget[~own], c.mean[~own], "o", color=colour, mfc="white", ms=5, mew=1.3)
    if saving.at_error is not None:
        target = saving.at_error
        ax.axhline(target, color="0.4", ls="--", lw=0.8)
        crossings = dict(saving.methods)
        ref = saving.reference_crossing
        if ref is not None and ref.reached:
            crossings[reference] = Saving(1.0, ref.budget, True, ref.extrapolated)
        for method, s in crossings.items():
            if s.budget is None or not s.reached:
                continue
            c = curves[method]
            if s.extrapolated:  # the log-log line the crossing was read from
                end = -1 if s.budget > c.budget[-1] else 0
                ax.plot([c.budget[end], s.budget], [c.mean[end], target], ":", color=colours[method], lw=1.2)
            ax.plot([s.budget], [target], marker="v", color=colours[method], ms=8, mec="k", mew=0.5,
                    mfc="white" if s.extrapolated else colours[method])
    all_budgets = np.unique(np.concatenate([c.budget for c in curves.values()]))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(all_budgets)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    label, factor = metric_axis(metric)
    shown = FuncFormatter(lambda value, _: f"{value * factor:.3g}")
    ax.yaxis.set_major_formatter(shown)
    ax.yaxis.set_minor_formatter(shown)
    ax.set_xlabel("number of labelled cells")
    ax.set_ylabel(label)
    ax.grid(True, which="both", alpha=0.3)
    # below the axes, so that no curve is hidden behind it
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7, frameon=False)
    if saving.methods:  # beside the axes, for the same reason
        from matplotlib.lines import Line2D

        lines = [f"{m}: {format_factor(s)}" for m, s in sorted(saving.methods.items())]
        if any(s.extrapolated for s in saving.methods.values()):
            lines.append(f"~: extrapolated in log-log\n(at most {max_extrapolation:g}x)")
        fig.legend([Line2D([], [], ls="none")] * len(lines), lines, loc="outside right upper", fontsize=7,
                   handlelength=0, handletextpad=0, title=f"label saving vs {reference}\nat "
                   f"{format_error(saving.at_error, metric)} (▼)", title_fontsize=7, alignment="left")
    spread_name = "min-max" if spread == "minmax" else "±1 std"
    ax.set_title(title or f"test {label.split(' (')[0]} vs labels (mean, {spread_name} over seeds)", fontsize=10)
    _save(fig, out)
    return saving.factors()


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
    fig = _new_figure(max(6.5, 0.55 * len(transformations) * max(1, len(methods) / 2)), 2.6 * len(metrics) + 1.0)
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics):
        table = np.array([[values[m][metric].get(t, math.nan) for t in transformations] for m in methods])
        finite = table[np.isfinite(table)]
        top = float(finite.max()) if finite.size else 1.0
        positive = finite[finite > 0]
        log = positive.size > 0 and top / positive.min() > 100 and metric == "gamma_f"
        for i, method in enumerate(methods):
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, table[i], width, label=method, color=f"C{i % 10}")
        for j in range(len(transformations)):  # say why a group of bars is empty instead of leaving a gap
            column = table[:, j]
            if np.isnan(column).all():
                note = "n/a"
            elif np.nanmax(np.abs(column)) < 1e-3 * top:
                note = "≈ 0"
            else:
                for i in np.flatnonzero(np.isnan(column)):
                    ax.text(x[j] + (i - (len(methods) - 1) / 2) * width, 0, "n/a", rotation=90, fontsize=6,
                            ha="center", va="bottom", color="0.4", transform=ax.get_xaxis_transform())
                continue
            ax.text(x[j], 0.04, note, ha="center", va="bottom", fontsize=8, color="0.35",
                    transform=ax.get_xaxis_transform())
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(DIAGNOSTIC_AXES.get(metric, metric.replace("_", " ")), fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", fontsize=8,
               ncols=min(len(methods), 5), frameon=False)
    ticks = [f"{t.split(':', 1)[-1]}\n{t.split(':', 1)[0]}" if ":" in t else t for t in transformations]
    axes[-1].set_xticks(x, ticks, fontsize=8)
    axes[-1].set_xlabel("transformation (element, group); n/a: not defined there, ≈ 0: below 0.1 % of the panel's "
                        "largest value (invariant)", fontsize=8)
    fig.suptitle("learned symmetry of each encoder per transformation", fontsize=10)
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
    cell_ids: Sequence[Any] | None = None,
    encoder_name: str | None = None,
) -> list[Path]:
    """The first two principal components (numpy SVD of the centred embeddings) of a few cells and their group
    orbits; the points of one orbit share a colour and are joined in the order given (group label order from
    :func:`~photossl.evaluation.orbit_embeddings`), the first point (the untransformed cell) a star.

    With ``element_names`` each group element gets its own marker, named in a second legend (no text next to the
    points, which would overlap). ``cell_ids[orbit_label]`` names each orbit's cell in the legend (default: the
    orbit label). ``encoder_name`` heads the title. Shape: embeddings (m, d), orbit_labels (m,) -> written paths. At
    most ``max_orbits`` orbits.
    """
    from matplotlib.lines import Line2D

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

    markers = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
    element_marker: dict[str, str] = {}
    if names is not None:
        for name in names:
            element_marker.setdefault(name, "*" if not element_marker else markers[(len(element_marker) - 1) % 10])
    fig = _new_figure(6.8, 5.0)
    ax = fig.add_subplot()
    for i, orbit in enumerate(kept):
        idx = np.flatnonzero(labels == orbit)
        pts = coords[idx]
        colour = f"C{i % 10}"
        ring = np.vstack([pts, pts[:1]])
        ax.plot(ring[:, 0], ring[:, 1], "-", color=colour, lw=1, alpha=0.7)
        cell = orbit if cell_ids is None else cell_ids[orbit]
        if names is None:
            ax.scatter(pts[1:, 0], pts[1:, 1], color=colour, s=22, zorder=3)
        else:
            for j, p in zip(idx[1:], pts[1:]):
                ax.scatter([p[0]], [p[1]], color=colour, s=26, marker=element_marker[names[j]], zorder=3,
                           edgecolors="k", lw=0.3)
        ax.scatter(pts[:1, 0], pts[:1, 1], color=colour, s=90, marker="*", edgecolors="k", lw=0.5, zorder=4,
                   label=f"cell {cell}")
    ax.set_xlabel(f"PC 1 ({100 * variance[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * variance[1]:.0f} % of variance)" if variance.size > 1 else "PC 2")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=7, title="cell (★ = itself)",
               title_fontsize=7)
    if element_marker:
        handles = [Line2D([], [], ls="none", marker=m, color="0.4", markeredgecolor="k", markeredgewidth=0.3)
                   for m in element_marker.values()]
        fig.legend(handles, list(element_marker), loc="outside right lower", fontsize=7, title="group element",
                   title_fontsize=7)
    title = "embeddings of cells (stars) and their group orbits"
    ax.set_title(title if encoder_name is None else f"{encoder_name}: {title}", fontsize=10)
    return _save(fig, out)


def plot_dos_predictions(
    freq: Any,
    true: Any,
    pred: Any,
    out: str | Path,
    n: int = 4,
    start: int = DOS_START,
    stop: int = DOS_STOP,
    cell_ids: Sequence[Any] | None = None,
    title: str | None = None,
) -> list[Path]:
    """Predicted against true DOS for the first ``n`` cells, each panel titled with its cell (``cell_ids[i]``, the
    dataset index; default its position) and its relative L1 error over bins start..stop−1 (the SIB-CL metric); bins
    outside that window are shaded. ``title``: the figure's title, e.g. the method and label budget.

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
    if cell_ids is not None and len(cell_ids) < count:
        raise PhotosslError(f"cell_ids must name the {count} cells shown, got {len(cell_ids)}")
    cols = min(count, 2)
    rows = -(-count // cols)
    fig = _new_figure(4.2 * cols, 2.8 * rows + (0.4 if title else 0.0))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    window = slice(start, stop)
    for i in range(count):
        ax = axes[i]
        err = np.abs(y_hat[i, window] - y[i, window]).sum() / np.abs(y[i, window]).sum()
        if start > 0:
            ax.axvspan(w[0], w[start], color="0.9", lw=0, label="not scored")
        if stop < n_freq:
            ax.axvspan(w[stop - 1], w[-1], color="0.9", lw=0)
        ax.plot(w, y[i], color="k", lw=1.2, label="true")
        ax.plot(w, y_hat[i], color="C3", lw=1.2, ls="--", label="predicted")
        cell = i if cell_ids is None else cell_ids[i]
        ax.set_title(f"cell {cell}: relative L1 error {100 * err:.2f} %", fontsize=9)
        ax.set_xlabel("scaled frequency ω√ε̄ a/2πc" if freq is not None else "frequency bin")
        ax.set_ylabel("DOS / √ε̄ (per unit ω√ε̄a/2πc)", fontsize=8)
    for ax in axes[count:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8, loc="lower right")  # the DOS rises with frequency: that corner stays empty
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, out)
