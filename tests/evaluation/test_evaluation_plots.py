import numpy as np
import pytest
import torch

from photossl.errors import PhotosslError
from photossl.evaluation import (
    plot_dos_predictions,
    plot_embedding_orbits,
    plot_error_vs_labels,
    plot_symmetry_errors,
    symmetry_diagnostics,
)


def assert_figures(paths, stem):
    assert [p.name for p in paths] == [f"{stem.name}.png", f"{stem.name}.pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_error_vs_labels_figure(tmp_path, constructed_table):
    stem = tmp_path / "figs" / "error_vs_labels"
    factors = plot_error_vs_labels(constructed_table, stem)
    assert factors["B"] == pytest.approx(4.0, rel=1e-12)
    assert_figures([stem.with_suffix(".png"), stem.with_suffix(".pdf")], stem)
    std_stem = tmp_path / "std"
    plot_error_vs_labels(constructed_table, f"{std_stem}.png", spread="std", at_error=0.06)
    assert_figures([std_stem.with_suffix(".png"), std_stem.with_suffix(".pdf")], std_stem)
    with pytest.raises(PhotosslError, match="spread"):
        plot_error_vs_labels(constructed_table, stem, spread="iqr")


def test_error_vs_labels_figure_joins_long_runs(tmp_path, constructed_table):
    # B-long re-ran B's two largest budgets: one curve for B, and its factor reads the joined points.
    rows = constructed_table + [{"method": "B-long", "budget": b, "seed": 0, "dos_rel_l1": e}
                                for b, e in ((1600, 0.025), (3200, 0.015))]
    stem = tmp_path / "joined"
    factors = plot_error_vs_labels(rows, stem)
    assert set(factors) == {"B", "C"} and factors["B"] == pytest.approx(4.0, rel=1e-12)
    assert_figures([stem.with_suffix(".png"), stem.with_suffix(".pdf")], stem)
    assert set(plot_error_vs_labels(rows, tmp_path / "apart", fold_long=False)) == {"B", "B-long", "C"}


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
