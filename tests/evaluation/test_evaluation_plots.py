import csv
import math

import numpy as np
import pytest
import torch
import xarray as xr

from photossl.errors import PhotosslError
from photossl.evaluation import (
    budget_at_error,
    error_cuts,
    label_saving_factors,
    load_results_table,
    plot_dos_predictions,
    plot_embedding_orbits,
    plot_error_vs_labels,
    plot_symmetry_errors,
    symmetry_diagnostics,
)

BUDGETS = (200, 400, 800, 1600, 3200)


def constructed_table():
    """Method B reaches supervised's 3200-label error (0.04) with 800 labels; C never does. Three seeds per cell,
    symmetric about the listed mean."""
    means = {
        "supervised": [0.10, 0.08, 0.06, 0.05, 0.04],
        "B": [0.07, 0.05, 0.04, 0.03, 0.02],
        "C": [0.20, 0.15, 0.12, 0.10, 0.09],
    }
    rows = []
    for method, values in means.items():
        for budget, mean in zip(BUDGETS, values):
            for seed, offset in enumerate((-0.002, 0.0, 0.002)):
                rows.append({"method": method, "budget": budget, "seed": seed, "dos_rel_l1": mean + offset})
    return rows


def assert_figures(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_label_saving_factor_on_a_constructed_table():
    factors = label_saving_factors(constructed_table())
    assert set(factors) == {"B", "C"}
    assert factors["B"] == pytest.approx(4.0, rel=1e-12)
    assert math.isnan(factors["C"])


def test_error_cuts_on_a_constructed_table():
    cuts = error_cuts(constructed_table())
    assert set(cuts) == {"B", "C"} and sorted(cuts["B"]) == list(BUDGETS)
    assert cuts["B"][200] == pytest.approx(0.3) and cuts["B"][3200] == pytest.approx(0.5)
    assert cuts["C"][400] == pytest.approx(1 - 0.15 / 0.08)  # worse than the reference: negative
    assert error_cuts(constructed_table(), reference="nobody") == {}


def test_budget_at_error_interpolates_in_log_log():
    # error ∝ 1/budget between the points: 0.05 is reached at 200, not at the linear-interpolation value 300.
    assert budget_at_error([100, 400], [0.1, 0.025], 0.05) == pytest.approx(200.0, rel=1e-12)
    assert budget_at_error([100, 400], [0.1, 0.025], 0.1) == pytest.approx(100.0)
    assert math.isnan(budget_at_error([100, 400], [0.1, 0.025], 0.01))  # never reached
    assert math.isnan(budget_at_error([100, 400], [0.1, 0.025], 0.2))  # below it already at the first budget
    assert budget_at_error([100, 200, 400], [0.1, 0.04, 0.06], 0.05) < 200  # first crossing
    with pytest.raises(PhotosslError, match="increasing"):
        budget_at_error([400, 100], [0.1, 0.2], 0.15)


def test_power_laws_give_the_exact_factor_at_any_error():
    rows = []
    for budget in (50, 100, 200, 400, 800, 1600, 3200):
        rows.append({"method": "supervised", "budget": budget, "seed": 0, "err": 0.1 * (budget / 100) ** -0.5})
        rows.append({"method": "care", "budget": budget, "seed": 0, "err": 0.1 * (budget / 25) ** -0.5})
    for at_error in (0.05, 0.0333, 0.02):
        factors = label_saving_factors(rows, metric="err", at_error=at_error)
        assert factors["care"] == pytest.approx(4.0, rel=1e-10)


def test_csv_and_datasets_give_the_same_table(tmp_path):
    rows = constructed_table()
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
    for table in (path, flat, gridded, netcdf):
        assert label_saving_factors(table)["B"] == pytest.approx(4.0, rel=1e-12)
    loaded = load_results_table(path)
    assert len(loaded) == len(rows) + 1 and math.isnan(loaded[-1]["dos_rel_l1"])
    with pytest.raises(PhotosslError, match="columns"):
        load_results_table([{"method": "a", "budget": 1}])
    with pytest.raises(PhotosslError, match="no variable"):
        load_results_table(gridded, metric="gap_mae")


def test_error_vs_labels_figure(tmp_path):
    stem = tmp_path / "figs" / "error_vs_labels"
    factors = plot_error_vs_labels(constructed_table(), stem)
    assert factors["B"] == pytest.approx(4.0, rel=1e-12)
    assert_figures([stem.with_suffix(".png"), stem.with_suffix(".pdf")], stem)
    std_stem = tmp_path / "std"
    plot_error_vs_labels(constructed_table(), f"{std_stem}.png", spread="std", at_error=0.06)
    assert_figures([std_stem.with_suffix(".png"), std_stem.with_suffix(".pdf")], std_stem)
    with pytest.raises(PhotosslError, match="spread"):
        plot_error_vs_labels(constructed_table(), stem, spread="iqr")


def test_symmetry_and_orbit_figures(tmp_path):
    def encoder(x):
        return torch.cat([x.flatten(1)[:, :6], x.mean(dim=(1, 2, 3))[:, None]], dim=1)

    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    by_method = {
        "simclr": symmetry_diagnostics(encoder, x, groups=("rot4", "flip")),
        "care": symmetry_diagnostics(lambda v: v.flatten(1), x, groups=("rot4", "flip")),
    }
    stem = tmp_path / "symmetry"
    assert_figures(plot_symmetry_errors(by_method, stem), stem)

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(12, 5))
    stem = tmp_path / "orbits"
    paths = plot_embedding_orbits(embeddings, np.repeat(np.arange(3), 4), stem, ["e", "r90", "r180", "r270"] * 3)
    assert_figures(paths, stem)
    with pytest.raises(PhotosslError, match="orbit_labels"):
        plot_embedding_orbits(embeddings, np.arange(5), stem)


def test_dos_prediction_figure(tmp_path):
    rng = np.random.default_rng(1)
    freq = np.linspace(0, 1.2, 500)[:400]
    true = np.cumsum(rng.uniform(size=(5, 400)), axis=1) / 100
    pred = true * (1 + 0.05 * rng.normal(size=true.shape))
    stem = tmp_path / "dos"
    assert_figures(plot_dos_predictions(freq, torch.tensor(true), pred, stem, n=3), stem)
    with pytest.raises(PhotosslError, match="freq"):
        plot_dos_predictions(freq[:10], true, pred, stem)
