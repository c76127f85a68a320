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


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions draw (their files are still written)."""
    from photossl.evaluation import plots

    figures, save = [], plots._save

    def keep(fig, out):
        figures.append(fig)
        return save(fig, out)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def _texts(fig) -> list[str]:
    found = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    return [t for t in found if t]


def test_figures_name_cells_methods_and_units(tmp_path, drawn, constructed_table):
    rng = np.random.default_rng(2)
    freq = np.linspace(0, 1.2, 500)[:400]
    true = 2 * np.pi * freq[None] + rng.uniform(size=(3, 400)) / 10
    plot_dos_predictions(freq, true, true * 1.01, tmp_path / "dos", n=3, cell_ids=[417, 12, 3001],
                         title="care: 200 labels, seed 0 (test cells)")
    axes = [ax for ax in drawn[-1].axes if ax.get_visible()]
    assert [ax.get_title().split(":")[0] for ax in axes] == ["cell 417", "cell 12", "cell 3001"]
    assert drawn[-1].get_suptitle() == "care: 200 labels, seed 0 (test cells)"
    assert axes[0].get_ylabel().startswith("DOS / √ε̄") and axes[0].get_legend()._loc == 4  # lower right

    plot_error_vs_labels(constructed_table, tmp_path / "evl")
    (ax,) = drawn[-1].axes
    assert ax.get_ylabel() == "DOS error (relative L1, %)" and ax.get_legend() is None  # legends sit outside

    # an encoder invariant to half-cell translations: γ_f is undefined there and the invariance error vanishes
    rows = [{"group": "rot4", "name": "r90", "invariance_error": 0.2, "gamma_f": 40.0},
            {"group": "half_translate", "name": "t(0,1/2)", "invariance_error": 1e-8, "gamma_f": None},
            {"group": "half_translate", "name": "t(1/2,0)", "invariance_error": 1e-8, "gamma_f": None}]
    plot_symmetry_errors({"simclr": {"transformations": rows}, "care": {"transformations": rows}},
                         tmp_path / "sym", metrics=("invariance_error", "gamma_f"))
    axes = drawn[-1].axes
    assert axes[0].get_ylabel().startswith("invariance error") and axes[1].get_ylabel() == "γ_f (CARE equivariance)"
    assert _texts(axes[0]).count("≈ 0") == 2 and _texts(axes[1]).count("n/a") == 2  # said, not left as a gap

    embeddings = rng.normal(size=(12, 5))
    plot_embedding_orbits(embeddings, np.repeat(np.arange(3), 4), tmp_path / "orb", ["e", "r90", "r180", "r270"] * 3,
                          cell_ids=[40, 41, 97], encoder_name="care")
    fig = drawn[-1]
    assert fig.axes[0].get_title().startswith("care: ")  # which encoder, in the figure itself
    assert not fig.axes[0].texts  # no per-point labels to overlap
    legend_texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert legend_texts == ["cell 40", "cell 41", "cell 97", "e", "r90", "r180", "r270"]
