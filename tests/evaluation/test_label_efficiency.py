import csv
import math

import numpy as np
import pytest
import xarray as xr

from photossl.errors import PhotosslError
from photossl.evaluation import (
    budget_at_error,
    error_cut_table,
    error_cuts,
    error_cuts_markdown,
    find_crossing,
    fold_long_runs,
    label_saving,
    label_saving_factors,
    load_results_table,
)
from photossl.evaluation.label_efficiency import format_factor, saving_lines

BUDGETS = (200, 400, 800, 1600, 3200)
GRID = (100, 200, 400, 800)


def table(curves, budgets=GRID):
    """One seed per cell: {method: errors at ``budgets``}."""
    return [{"method": m, "budget": b, "seed": 0, "err": e} for m, errors in curves.items()
            for b, e in zip(budgets, errors)]


REFERENCE = [0.10, 0.08, 0.06, 0.05]  # target error 0.05, reached at 800 labels


# -- the budget at an error -------------------------------------------------------------------------------------------
def test_budget_at_error_interpolates_in_log_log():
    # error ∝ 1/budget between the points: 0.05 is reached at 200, not at the linear-interpolation value 300.
    assert budget_at_error([100, 400], [0.1, 0.025], 0.05) == pytest.approx(200.0, rel=1e-12)
    assert budget_at_error([100, 400], [0.1, 0.025], 0.1) == pytest.approx(100.0)
    assert math.isnan(budget_at_error([100, 400], [0.1, 0.025], 0.01))  # outside: not extrapolated by default
    assert math.isnan(budget_at_error([100, 400], [0.1, 0.025], 0.2))  # below it already at the first budget
    assert budget_at_error([100, 200, 400], [0.1, 0.04, 0.06], 0.05) < 200  # first crossing
    with pytest.raises(PhotosslError, match="increasing"):
        budget_at_error([400, 100], [0.1, 0.2], 0.15)


def test_crossing_extrapolates_in_log_log_within_the_bound():
    # last segment 400 -> 800 halves the error (slope -1): 0.025 lies at 800 * 0.04 / 0.025 = 1280 <= 2 * 800
    cross = find_crossing(GRID, [0.2, 0.1, 0.08, 0.04], 0.025)
    assert cross.reached and cross.extrapolated and cross.budget == pytest.approx(1280.0, rel=1e-12)
    # first segment 400 -> 1600 with slope -1/2, target above its first error: 400 * (0.04 / 0.05)^2 = 256 >= 200
    cross = find_crossing([400, 1600], [0.04, 0.02], 0.05)
    assert cross.reached and cross.extrapolated and cross.budget == pytest.approx(256.0, rel=1e-12)
    # the same crossings beyond the bound (or with no extrapolation allowed) are not reached
    assert not find_crossing(GRID, [0.2, 0.1, 0.08, 0.04], 0.025, max_extrapolation=1.5).reached
    assert not find_crossing([400, 1600], [0.04, 0.02], 0.05, max_extrapolation=1.0).reached
    far = find_crossing(GRID, [0.2, 0.1, 0.08, 0.04], 0.005)  # 800 * 8 = 6400 labels
    assert not far.reached and math.isnan(far.budget) and "6400" in far.reason and "2x beyond" in far.reason
    with pytest.raises(PhotosslError, match="max_extrapolation"):
        find_crossing(GRID, REFERENCE, 0.05, max_extrapolation=0.5)


@pytest.mark.parametrize("errors", [[0.2, 0.1, 0.07, 0.07], [0.2, 0.1, 0.06, 0.07]], ids=["flat", "rising"])
def test_a_flat_or_rising_tail_never_reaches(errors):
    cross = find_crossing(GRID, errors, 0.05)
    assert not cross.reached and not cross.extrapolated and "flat or rising" in cross.reason
    saving = label_saving(table({"supervised": REFERENCE, "M": errors}), "err").methods["M"]
    assert saving.factor is None and saving.budget is None and not saving.reached and "flat or rising" in saving.reason
    assert format_factor(saving) == "not reached"


# -- label-saving factors ---------------------------------------------------------------------------------------------
def test_factor_of_a_crossing_inside_the_measured_budgets():
    # M falls from 0.08 at 200 to 0.04 at 400 (slope -1 in log-log): 0.05 at 200 * 0.08 / 0.05 = 320 labels,
    # against the reference's 800: a factor 2.5. Linear interpolation would say 200 + 200 * 0.03 / 0.04 = 350.
    result = label_saving(table({"supervised": REFERENCE, "M": [0.09, 0.08, 0.04, 0.03]}), "err")
    assert result.at_error == 0.05 and result.reference_crossing.budget == 800
    saving = result.methods["M"]
    assert saving.budget == pytest.approx(320.0, rel=1e-12) and saving.factor == pytest.approx(2.5, rel=1e-12)
    assert saving.reached and not saving.extrapolated
    assert format_factor(saving) == "2.5x (320 labels)"


def test_factor_of_an_extrapolated_crossing_is_flagged():
    # M's last segment 400 -> 800 has slope log(0.054 / 0.06) / log 2; it reaches 0.05 at
    # 800 * (0.05 / 0.054)^(1 / slope) labels, within 2 x 800
    errors = [0.12, 0.09, 0.06, 0.054]
    slope = math.log(0.054 / 0.06) / math.log(2)
    budget = 800 * (0.05 / 0.054) ** (1 / slope)
    assert 800 < budget < 1600 and budget == pytest.approx(1327.3, abs=0.1)
    result = label_saving(table({"supervised": REFERENCE, "M": errors}), "err")
    saving = result.methods["M"]
    assert saving.reached and saving.extrapolated
    assert saving.budget == pytest.approx(budget, rel=1e-12) and saving.factor == pytest.approx(800 / budget, rel=1e-12)
    assert saving.to_dict() == {"factor": saving.factor, "budget": saving.budget, "extrapolated": True,
                                "reached": True, "reason": None}
    assert format_factor(saving) == "~0.6x (1327 labels, extrap.)"
    assert "M ~0.6x (1327 labels, extrapolated)" in saving_lines(result)[0]


def test_reference_against_itself_gives_one():
    rows = table({"supervised": REFERENCE, "copy": REFERENCE})
    for at_error in (None, 0.07, 0.045):  # at its last budget, inside, extrapolated
        saving = label_saving(rows, "err", at_error).methods["copy"]
        assert saving.factor == pytest.approx(1.0, rel=1e-12)
        assert saving.extrapolated == (at_error == 0.045)


def test_a_reference_that_does_not_reach_gives_no_factors():
    result = label_saving(table({"supervised": REFERENCE, "M": [0.05, 0.03, 0.02, 0.01]}), "err", at_error=0.001)
    saving = result.methods["M"]
    assert saving.factor is None and "supervised does not reach" in saving.reason
    assert label_saving(table({"M": REFERENCE}), "err").methods == {}
    assert label_saving_factors(table({"M": REFERENCE}), "err") == {}


def test_label_saving_factor_on_a_constructed_table(constructed_table):
    factors = label_saving_factors(constructed_table)
    assert set(factors) == {"B", "C"}
    assert factors["B"] == pytest.approx(4.0, rel=1e-12)
    assert math.isnan(factors["C"])  # 0.09 at 3200, falling slowly: far beyond 2 x 3200


def test_power_laws_give_the_exact_factor_at_any_error():
    rows = []
    for budget in (50, 100, 200, 400, 800, 1600, 3200):
        rows.append({"method": "supervised", "budget": budget, "seed": 0, "err": 0.1 * (budget / 100) ** -0.5})
        rows.append({"method": "care", "budget": budget, "seed": 0, "err": 0.1 * (budget / 25) ** -0.5})
    for at_error in (0.05, 0.0333, 0.02):
        factors = label_saving_factors(rows, metric="err", at_error=at_error)
        assert factors["care"] == pytest.approx(4.0, rel=1e-10)
    # 0.1 * (6400 / 100)^-0.5 = 0.0125: the reference extrapolated to 6400 labels, care inside at 1600
    saving = label_saving(rows, "err", 0.0125).methods["care"]
    assert saving.factor == pytest.approx(4.0, rel=1e-10) and saving.extrapolated


# -- -long runs -------------------------------------------------------------------------------------------------------
def test_fold_long_runs_joins_them_onto_their_method():
    rows = table({"supervised": REFERENCE, "M": [0.09, 0.07, 0.06, 0.055]})
    rows += [{"method": "supervised-long", "budget": 800, "seed": 0, "err": 0.04},
             {"method": "supervised-long", "budget": 1600, "seed": 0, "err": 0.03},
             {"method": "M-long", "budget": 800, "seed": 0, "err": 0.045, "status": "ok"},
             {"method": "M-long", "budget": 1600, "seed": 0, "err": math.nan, "status": "failed"},
             {"method": "M", "budget": 1600, "seed": 0, "err": 0.05}]
    before = [dict(r) for r in rows]
    folded = fold_long_runs(rows)
    assert rows == before  # the input is left alone
    curve = {(r["method"], r["budget"]): r for r in folded}
    assert {m for m, _ in curve} == {"supervised", "M"}
    assert [b for m, b in curve if m == "supervised"] == [100, 200, 400, 800, 1600]
    assert curve["supervised", 800]["err"] == 0.04 and curve["supervised", 800]["folded_from"] == "supervised-long"
    assert "folded_from" not in curve["supervised", 400]
    assert curve["M", 800]["err"] == 0.045  # replaced by the long run
    at_1600 = [r for r in folded if r["method"] == "M" and r["budget"] == 1600]  # a failed long cell replaces nothing
    assert [r["err"] for r in at_1600 if "folded_from" not in r] == [0.05]
    # factors read the joined curves; a reference named X-long names X
    result = label_saving(rows, "err", reference="supervised-long")
    assert result.reference == "supervised" and result.at_error == 0.03 and set(result.methods) == {"M"}
    assert result.folded == {"supervised": ((800.0, 1600.0), "supervised-long"), "M": ((800.0,), "M-long")}
    assert result.to_dict()["folded_long_runs"]["supervised"] == {"from": "supervised-long", "budgets": [800, 1600]}
    assert set(label_saving(rows, "err", fold_long=False).methods) == {"M", "supervised-long", "M-long"}


# -- error cuts -------------------------------------------------------------------------------------------------------
def test_error_cuts_on_a_constructed_table(constructed_table):
    cuts = error_cuts(constructed_table)
    assert set(cuts) == {"B", "C"} and sorted(cuts["B"]) == list(BUDGETS)
    assert cuts["B"][200] == pytest.approx(0.3) and cuts["B"][3200] == pytest.approx(0.5)
    assert cuts["C"][400] == pytest.approx(1 - 0.15 / 0.08)  # worse than the reference: negative
    assert error_cuts(constructed_table, reference="nobody") == {}


def test_error_cut_spread_pairs_the_seeds():
    rows = [{"method": "supervised", "budget": 100, "seed": s, "err": e} for s, e in enumerate((0.10, 0.20))]
    rows += [{"method": "M", "budget": 100, "seed": s, "err": e} for s, e in enumerate((0.09, 0.10))]
    rows += [{"method": "M", "budget": 200, "seed": 0, "err": 0.05}]  # no reference there
    cut = error_cut_table(rows, "err")["M"]
    assert list(cut) == [100]
    assert cut[100]["cut"] == pytest.approx(1 - 0.095 / 0.15)
    assert cut[100]["min"] == pytest.approx(0.1) and cut[100]["max"] == pytest.approx(0.5) and cut[100]["n"] == 2
    text = error_cuts_markdown(rows, "err")
    assert "| method \\ labels | 100 | 200 |" in text
    assert "| supervised (err, mean) | 0.1500 | – |" in text
    assert "| M | +36.7 (+10.0 … +50.0) | – |" in text


def test_csv_and_datasets_give_the_same_table(tmp_path, constructed_table):
    rows = constructed_table
    path = tmp_path / "results.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["method", "budget", "seed", "dos_rel_l1", "wall_time"])
        writer.writeheader()
        writer.writerows({**r, "wall_time": 1.0} for r in rows)
        writer.writerow({"method": "B", "budget": 50, "seed": 0, "dos_rel_l1": "", "wall_time": ""})  # failed cell
    flat = xr.Dataset(
        {k: ("row", [r[k] for r in rows]) for k in ("method", "budget", "seed", "dos_rel_l1")}
    )
    methods = ["supervised", "B", "C"]
    grid = np.array([[[r["dos_rel_l1"] for r in rows if r["method"] == m and r["budget"] == b] for b in BUDGETS]
                     for m in methods])
    gridded = xr.Dataset(
        {"dos_rel_l1": (("method", "budget", "seed"), grid)},
        coords={"method": methods, "budget": list(BUDGETS), "seed": [0, 1, 2]},
    )
    netcdf = tmp_path / "results.nc"
    gridded.to_netcdf(netcdf, engine="h5netcdf")
    for source in (path, flat, gridded, netcdf):
        assert label_saving_factors(source)["B"] == pytest.approx(4.0, rel=1e-12)
        assert error_cut_table(source)["B"][400]["n"] == 3
    loaded = load_results_table(path)
    assert len(loaded) == len(rows) + 1 and math.isnan(loaded[-1]["dos_rel_l1"])
    with pytest.raises(PhotosslError, match="columns"):
        load_results_table([{"method": "a", "budget": 1}])
    with pytest.raises(PhotosslError, match="no variable"):
        load_results_table(gridded, metric="gap_mae")
