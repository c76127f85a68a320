"""How many labels each method saves: error curves over seeds, the label budget at which a curve reaches an error,
label-saving factors and error cuts against a reference method.

Results tables (see :func:`load_results_table`) have one row per grid cell with at least the columns ``method``,
``budget`` and the metric (``seed`` and others are kept): a list of dicts, an xarray Dataset, or the path of a CSV or
NetCDF file.

Label-saving factor of a method against the reference at error ε: N_reference(ε) / N_method(ε), where N(ε) is the
budget at which the mean-over-seeds error curve first comes down to ε, read off the curve interpolated piecewise
linearly in log budget against log error. When ε lies outside a curve's measured range, the line through its last
two points (or its first two) is extended in log-log, at most ``max_extrapolation`` times beyond the measured budgets,
and the result is flagged as extrapolated. A curve that is flat or rising where it would have to fall, or that would
need more than that, does not reach ε: its factor is None, with the reason.

Tables of older studies may hold ``X-long`` methods: method X re-run at its largest budgets with a longer
fine-tuning schedule. :func:`fold_long_runs` joins them onto X's curve (their points replace X's at those budgets),
so every method has one curve; the figures, factors and error cuts fold by default.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from photossl.errors import PhotosslError

SPREADS = ("minmax", "std")
REQUIRED_COLUMNS = ("method", "budget")
LONG_SUFFIX = "-long"
# How far beyond its measured budgets a curve is extended to reach the target error (a factor on the budget).
MAX_EXTRAPOLATION = 2.0


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


def fold_long_runs(rows: Sequence[Mapping[str, Any]], suffix: str = LONG_SUFFIX) -> list[dict[str, Any]]:
    """One curve per method: the rows of method ``X-long`` become rows of ``X``, replacing X's rows at every budget
    where X-long has a finished cell (a row whose ``status``, when the table has one, is ``ok``). Folded rows keep
    their origin in ``folded_from``; the input is not modified.

    For tables written before fine-tuning steps scaled with the budget, where ``X-long`` re-ran X's largest budgets
    with a longer schedule.
    """
    out = [dict(r) for r in rows]
    long_budgets: dict[str, set[float]] = {}
    for row in out:
        method = str(row["method"])
        if method.endswith(suffix) and len(method) > len(suffix) and row.get("status", "ok") == "ok":
            long_budgets.setdefault(method[: -len(suffix)], set()).add(float(row["budget"]))
    folded = []
    for row in out:
        method = str(row["method"])
        if method in long_budgets and float(row["budget"]) in long_budgets[method]:
            continue  # replaced by the long run at this budget
        if method.endswith(suffix) and method[: -len(suffix)] in long_budgets:
            row["folded_from"] = method
            row["method"] = method[: -len(suffix)]
        folded.append(row)
    return folded


def folded_reference(reference: str, methods: set[str], suffix: str = LONG_SUFFIX) -> str:
    """The name of ``reference`` in a folded table whose methods are ``methods``: ``X-long`` becomes X."""
    if reference not in methods and reference.endswith(suffix) and reference[: -len(suffix)] in methods:
        return reference[: -len(suffix)]
    return reference


# -- curves -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """One method's error against budget over seeds. ``budget`` (m,) increasing; ``mean``, ``lower``, ``upper``
    (m,): the mean and the band (min / max, or mean ∓ 1 std); ``n`` (m,): seeds per budget. ``folded``: budgets
    whose points come from the run ``folded_from`` (see :func:`fold_long_runs`)."""

    budget: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: np.ndarray
    folded: tuple[float, ...] = ()
    folded_from: str | None = None


def error_curves(rows: Sequence[Mapping[str, Any]], metric: str, spread: str = "minmax") -> dict[str, Curve]:
    """Per method, the mean and spread over seeds at each budget (finite, positive values only); ``rows`` as from
    :func:`load_results_table`."""
    if spread not in SPREADS:
        raise PhotosslError(f"spread must be one of {', '.join(SPREADS)}; got {spread!r}")
    values: dict[str, dict[float, list[float]]] = {}
    origins: dict[str, dict[float, str]] = {}
    for row in rows:
        err, budget = float(row[metric]), float(row["budget"])
        if math.isfinite(err) and err > 0 and math.isfinite(budget) and budget > 0:
            values.setdefault(row["method"], {}).setdefault(budget, []).append(err)
            if row.get("folded_from"):
                origins.setdefault(row["method"], {})[budget] = str(row["folded_from"])
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
        folded = origins.get(method, {})
        curves[method] = Curve(budgets, mean, lower, upper, np.array([s.size for s in samples]),
                               tuple(sorted(folded)), next(iter(folded.values()), None))
    return curves


# -- the budget at an error -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crossing:
    """Where a curve reaches an error: ``budget`` (nan when not ``reached``), whether it lies beyond the measured
    budgets (``extrapolated``), and why not when it was not reached."""

    budget: float
    reached: bool
    extrapolated: bool = False
    reason: str | None = None


def _labels(budget: float) -> str:
    return f"{budget:.0f}" if budget < 1e5 else f"{budget:.1e}"


def find_crossing(budgets: Any, errors: Any, at_error: float,
                  max_extrapolation: float = MAX_EXTRAPOLATION) -> Crossing:
    """The smallest budget at which the curve comes down to ``at_error``, interpolating piecewise linearly in
    log-log between measured points.

    Outside the measured range the line through the last two points (target below every error) or the first two
    (target above the error at the smallest budget) is extended in log-log, up to ``max_extrapolation`` times the
    largest budget or down to the smallest over ``max_extrapolation`` (1 = no extrapolation). Not reached: a curve
    flat or rising where it would have to fall, or a crossing beyond that bound.

    Shape: budgets, errors (m,) with budgets strictly increasing -> :class:`Crossing`.
    """
    b = np.asarray(budgets, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if not (at_error > 0):
        raise PhotosslError(f"at_error must be > 0, got {at_error!r}")
    if not (max_extrapolation >= 1):
        raise PhotosslError(f"max_extrapolation must be >= 1 (1: no extrapolation), got {max_extrapolation!r}")
    if b.shape != e.shape or b.ndim != 1:
        raise PhotosslError(f"budgets and errors must be (m,) arrays of one length, got {b.shape} and {e.shape}")
    keep = np.isfinite(b) & np.isfinite(e) & (b > 0) & (e > 0)
    b, e = b[keep], e[keep]
    if b.size == 0:
        return Crossing(math.nan, False, reason="no finite, positive errors")
    if np.any(np.diff(b) <= 0):
        raise PhotosslError("budgets must be strictly increasing")
    log_b, log_e, log_t = np.log(b), np.log(e), math.log(at_error)
    at = np.isclose(e, at_error, rtol=1e-9, atol=0.0)
    hits = np.flatnonzero((e <= at_error) | at)
    if hits.size and at[hits[0]]:
        return Crossing(float(b[hits[0]]), True)
    if hits.size and hits[0] > 0:  # falls through the target between two measured budgets
        i = hits[0] - 1
        t = (log_t - log_e[i]) / (log_e[i + 1] - log_e[i])
        return Crossing(float(np.exp(log_b[i] + t * (log_b[i + 1] - log_b[i]))), True)
    if b.size < 2:
        return Crossing(math.nan, False, reason=f"one budget measured ({_labels(b[0])}): nothing to extrapolate")
    if hits.size:  # below the target already at the smallest budget: extend the first segment backwards
        end, slope = 0, (log_e[1] - log_e[0]) / (log_b[1] - log_b[0])
        where = f"below the error already at its smallest budget {_labels(b[0])}"
    else:  # above the target at every budget: extend the last segment forwards
        end, slope = -1, (log_e[-1] - log_e[-2]) / (log_b[-1] - log_b[-2])
        where = f"above the error at every budget up to {_labels(b[-1])}"
    if not slope < 0:
        return Crossing(math.nan, False, reason=f"{where}, and the error is flat or rising there")
    # Capped in log space: a nearly flat curve would overflow exp, and the bound below rejects it anyway.
    budget = float(np.exp(min(log_b[end] + (log_t - log_e[end]) / slope, 700.0)))
    if b[0] / max_extrapolation * (1 - 1e-12) <= budget <= b[-1] * max_extrapolation * (1 + 1e-12):
        return Crossing(budget, True, extrapolated=True)
    side = "below" if end == 0 else "beyond"
    return Crossing(math.nan, False, reason=f"{where}; extended in log-log it would reach it at ~{_labels(budget)} "
                                            f"labels, more than {max_extrapolation:g}x {side} the measured budgets")


def budget_at_error(budgets: Any, errors: Any, at_error: float, max_extrapolation: float = 1.0) -> float:
    """The budget of :func:`find_crossing` as a number, nan when not reached. By default without extrapolation:
    nan whenever the crossing lies outside the measured budgets.

    Shape: budgets, errors (m,) with budgets increasing -> float.
    """
    return find_crossing(budgets, errors, at_error, max_extrapolation).budget


# -- label-saving factors ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Saving:
    """One method's label saving against the reference: ``factor`` = reference budget / ``budget`` (None when
    either does not reach the error), flagged ``extrapolated`` when either budget was."""

    factor: float | None
    budget: float | None
    reached: bool
    extrapolated: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "budget": self.budget, "extrapolated": self.extrapolated,
                "reached": self.reached, "reason": self.reason}


@dataclass(frozen=True)
class LabelSaving:
    """Label-saving factors of every method against ``reference`` at ``at_error`` (None when the reference has no
    results). ``folded``: {method: (budgets, run)} taken from ``X-long`` runs."""

    metric: str
    reference: str
    at_error: float | None
    reference_crossing: Crossing | None
    methods: dict[str, Saving]
    max_extrapolation: float
    folded: dict[str, tuple[tuple[float, ...], str]]

    def factors(self) -> dict[str, float]:
        """{method: factor}, nan where there is none."""
        return {m: (math.nan if s.factor is None else s.factor) for m, s in self.methods.items()}

    def to_dict(self) -> dict[str, Any]:
        ref = self.reference_crossing
        return {
            "metric": self.metric, "reference": self.reference, "at_error": self.at_error,
            "reference_budget": None if ref is None or not ref.reached else ref.budget,
            "reference_extrapolated": None if ref is None else ref.extrapolated,
            "max_extrapolation": self.max_extrapolation,
            "folded_long_runs": {m: {"from": run, "budgets": [int(b) for b in budgets]}
                                 for m, (budgets, run) in self.folded.items()},
            "methods": {m: s.to_dict() for m, s in self.methods.items()},
        }


def saving_from_curves(curves: Mapping[str, Curve], reference: str, at_error: float | None, metric: str,
                       max_extrapolation: float = MAX_EXTRAPOLATION) -> LabelSaving:
    """:class:`LabelSaving` from error curves (see :func:`label_saving`)."""
    folded = {m: (c.folded, c.folded_from or "") for m, c in curves.items() if c.folded}
    if reference not in curves:
        return LabelSaving(metric, reference, at_error, None, {}, max_extrapolation, folded)
    if at_error is None:
        at_error = float(curves[reference].mean[-1])  # the reference's error at its largest budget
    crossings = {m: find_crossing(c.budget, c.mean, at_error, max_extrapolation) for m, c in curves.items()}
    ref = crossings[reference]
    methods = {}
    for method, cross in crossings.items():
        if method == reference:
            continue
        budget = cross.budget if cross.reached else None
        if not ref.reached:
            methods[method] = Saving(None, budget, cross.reached, cross.extrapolated,
                                     f"{reference} does not reach the error: {ref.reason}")
        elif not cross.reached:
            methods[method] = Saving(None, None, False, False, cross.reason)
        else:
            methods[method] = Saving(ref.budget / cross.budget, cross.budget, True,
                                     cross.extrapolated or ref.extrapolated)
    return LabelSaving(metric, reference, at_error, ref, methods, max_extrapolation, folded)


def label_saving(
    table: Any,
    metric: str = "dos_rel_l1",
    at_error: float | None = None,
    reference: str = "supervised",
    *,
    max_extrapolation: float = MAX_EXTRAPOLATION,
    fold_long: bool = True,
) -> LabelSaving:
    """Label-saving factor of every method against ``reference``: N_reference(ε) / N_method(ε), the ratio of the
    budgets at which the mean-over-seeds curves reach the error ε (see :func:`find_crossing`, extrapolating at most
    ``max_extrapolation`` times beyond the measured budgets). ε defaults to the reference's error at its largest
    budget (e.g. supervised with 3200 labels): a factor 4 then means the method reaches that error with 800 labels.

    ``fold_long``: first join ``X-long`` runs onto X (:func:`fold_long_runs`); a reference ``X-long`` then names X.
    """
    rows = load_results_table(table, metric)
    if fold_long:
        rows = fold_long_runs(rows)
        reference = folded_reference(reference, {r["method"] for r in rows})
    return saving_from_curves(error_curves(rows, metric), reference, at_error, metric, max_extrapolation)


def label_saving_factors(
    table: Any,
    metric: str = "dos_rel_l1",
    at_error: float | None = None,
    reference: str = "supervised",
    *,
    max_extrapolation: float = MAX_EXTRAPOLATION,
    fold_long: bool = True,
) -> dict[str, float]:
    """{method: factor} of :func:`label_saving` for every method but the reference, nan where there is none ({} if
    the reference is absent)."""
    return label_saving(table, metric, at_error, reference, max_extrapolation=max_extrapolation,
                        fold_long=fold_long).factors()


def format_error(value: float, metric: str) -> str:
    """An error as printed: relative errors (``*rel*``) in percent."""
    return f"{100 * value:#.3g} %" if "rel" in metric else f"{value:#.4g}"


def format_factor(saving: Saving, long: bool = False) -> str:
    """'2.3x (1390 labels)', '~2.2x (1440 labels, extrapolated)' (``long``) or '~2.2x (1440, extrap.)', or 'not
    reached'."""
    if saving.factor is None:
        return "not reached"
    f = saving.factor
    text = f"{f:.2g}x" if f < 100 else f"{f:.0f}x"
    flag = "extrapolated" if long else "extrap."
    detail = f"{_labels(saving.budget)} labels" + (f", {flag}" if saving.extrapolated else "")
    return f"{'~' if saving.extrapolated else ''}{text} ({detail})"


def saving_lines(result: LabelSaving) -> list[str]:
    """A one-line summary of the factors, then one line per method that does not reach the error (its reason)."""
    if result.at_error is None:
        return [f"label saving: no results for the reference {result.reference}"]
    head = f"label saving vs {result.reference} at {result.metric} = {format_error(result.at_error, result.metric)}"
    ref = result.reference_crossing
    if ref is not None and ref.reached:
        head += f" ({_labels(ref.budget)} labels{', extrapolated' if ref.extrapolated else ''})"
    parts = [f"{m} {format_factor(s, long=True)}" for m, s in result.methods.items()]
    lines = [f"{head}: {', '.join(parts)}" if parts else head]
    lines += [f"  {m}: {s.reason}" for m, s in result.methods.items() if s.factor is None and s.reason]
    if result.folded:
        lines.append("  one curve per method: " + "; ".join(
            f"{m} at {', '.join(_labels(b) for b in budgets)} from {run}"
            for m, (budgets, run) in result.folded.items()))
    return lines


# -- error cuts -------------------------------------------------------------------------------------------------------
def error_cut_table(
    table: Any, metric: str = "dos_rel_l1", reference: str = "supervised", *, fold_long: bool = True
) -> dict[str, dict[int, dict[str, Any]]]:
    """Relative error cut of every method against ``reference`` at each budget both measured, with its seed spread.

    ``cut``: 1 − mean_method / mean_reference over seeds (0.2 = a 20 % lower error; negative = worse). ``min`` /
    ``max``: the range over seeds of the paired cut 1 − e_method(s) / e_reference(s) (seed s draws the same labelled
    cells for every method), ``n``: the number of paired seeds (0, with min / max None, when the table has no
    ``seed`` column or no seed in common).

    Returns {method: {budget: {cut, min, max, n}}} for every method but the reference ({} if it is absent).
    """
    rows = load_results_table(table, metric)
    if fold_long:
        rows = fold_long_runs(rows)
        reference = folded_reference(reference, {r["method"] for r in rows})
    curves = error_curves(rows, metric)
    if reference not in curves:
        return {}
    by_seed: dict[tuple[str, float], dict[Any, float]] = {}
    for row in rows:
        err = row[metric]
        if math.isfinite(err) and err > 0 and row.get("seed") not in (None, ""):
            by_seed.setdefault((row["method"], row["budget"]), {})[str(row["seed"])] = err
    ref = dict(zip(curves[reference].budget.tolist(), curves[reference].mean.tolist()))
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for method, curve in curves.items():
        if method == reference:
            continue
        cuts = {}
        for budget, mean in zip(curve.budget.tolist(), curve.mean.tolist()):
            if budget not in ref:
                continue
            mine, theirs = by_seed.get((method, budget), {}), by_seed.get((reference, budget), {})
            paired = [1.0 - mine[s] / theirs[s] for s in mine if s in theirs]
            cuts[int(budget)] = {"cut": 1.0 - mean / ref[budget], "min": min(paired) if paired else None,
                                 "max": max(paired) if paired else None, "n": len(paired)}
        out[method] = cuts
    return out


def error_cuts(
    table: Any, metric: str = "dos_rel_l1", reference: str = "supervised", *, fold_long: bool = True
) -> dict[str, dict[int, float]]:
    """Relative error cut of every method against ``reference`` at each budget both measured:
    1 − mean_method / mean_reference over seeds (0.2 = a 20 % lower error; negative = worse).

    Returns {method: {budget: cut}} for every method but the reference ({} if the reference is absent).
    """
    return {method: {b: c["cut"] for b, c in cuts.items()}
            for method, cuts in error_cut_table(table, metric, reference, fold_long=fold_long).items()}


def error_cuts_markdown(table: Any, metric: str = "dos_rel_l1", reference: str = "supervised", *,
                        fold_long: bool = True) -> str:
    """A markdown table of :func:`error_cut_table`: one row per method, one column per budget, the cut in percent
    with the min – max of the paired per-seed cuts in brackets; the reference's mean error heads the table."""
    rows = load_results_table(table, metric)
    if fold_long:
        rows = fold_long_runs(rows)
        reference = folded_reference(reference, {r["method"] for r in rows})
    curves = error_curves(rows, metric)
    cuts = error_cut_table(rows, metric, reference, fold_long=False)
    if reference not in curves:
        return f"No error cuts: the table has no results for the reference {reference}.\n"
    budgets = sorted({int(b) for c in curves.values() for b in c.budget.tolist()})
    ref = dict(zip((int(b) for b in curves[reference].budget.tolist()), curves[reference].mean.tolist()))

    def pct(value: float) -> str:
        return f"{100 * value:+.1f}".replace("-", "−")

    lines = [
        (f"Error cut against {reference} ({metric}): 1 − mean / mean of {reference} over seeds, in %, at every "
         f"budget both measured (positive: a lower error than {reference}). In brackets: min … max over seeds of the "
         f"paired cut 1 − e / e_{reference} on the same labelled cells."),
        "",
        f"| method \\ labels | {' | '.join(map(str, budgets))} |",
        f"|---|{'---|' * len(budgets)}",
        f"| {reference} ({metric}, mean) | "
        + " | ".join(format_error(ref[b], metric) if b in ref else "–" for b in budgets) + " |",
    ]
    for method, by_budget in cuts.items():
        cells = []
        for b in budgets:
            c = by_budget.get(b)
            if c is None:
                cells.append("–")
            elif c["n"] > 1:
                cells.append(f"{pct(c['cut'])} ({pct(c['min'])} … {pct(c['max'])})")
            else:
                cells.append(pct(c["cut"]))
        lines.append(f"| {method} | {' | '.join(cells)} |")
    folded = {m: c for m, c in curves.items() if c.folded}
    if folded:
        lines += ["", "One row per method: " + "; ".join(
            f"{m} at {', '.join(_labels(b) for b in c.folded)} labels from {c.folded_from}" for m, c in folded.items())
            + "."]
    return "\n".join(lines) + "\n"
