"""Rough labels of a dataset's cells: the same cells, the same DOS bins, close to the exact labels, resumable, and
their cost recorded per chunk."""

import json
import shutil

import numpy as np
import pytest

from photossl.data import bundled_dataset_path, open_dataset
from photossl.data.generate import generate_chunk
from photossl.data.rough import (
    dataset_generate_config,
    generate_rough_dataset,
    label_cpu_per_cell,
    measure_cost_ratio,
    measure_label_cost,
    rough_config,
)
from photossl.data.storage import file_sha256
from photossl.errors import PhotosslError
from photossl.evaluation.metrics import dos_relative_l1
from photossl.physics.dos import empty_lattice_dos


def test_rough_config_keeps_the_cells_and_replaces_the_label_accuracy(tiny_config):
    exact = tiny_config(n_cells=10, targets=("dos", "gaps", "bands"), polarizations=("tm", "te"))
    rough = rough_config(exact, "dos_eldiff", "te", grid_size=5, solver_options={"cutoff": 2.5})
    kept = ("preset", "n_cells", "seed", "size", "group", "eps_in_range", "n_bands", "filling_range")
    assert all(getattr(rough, k) == getattr(exact, k) for k in kept)
    assert rough.grid_size == 5 and rough.targets == ("dos",) and rough.polarizations == ("te",)
    assert rough.solver_options["cutoff"] == 2.5 and rough.solver_options["k_grid"] == "monkhorst-pack"
    assert rough_config(exact, "gaps").targets == ("gaps",)
    with pytest.raises(PhotosslError, match="not a label setting"):
        rough_config(exact, n_cells=5)
    with pytest.raises(PhotosslError, match="bands"):
        rough_config(exact, "bands")


def test_rough_labels_lie_on_the_exact_bins_and_near_the_exact_labels(one_torch_thread):
    """The default rough recipe on 8 bundled cells: the exact labels' 400 frequencies, and each cell's rough DOS is
    closer to its own exact DOS than to any other cell's."""
    exact_dir = bundled_dataset_path()
    rough = generate_chunk(rough_config(dataset_generate_config(exact_dir)), 0, 8)
    exact = open_dataset(exact_dir, variables=["eps", "dos_eldiff"]).isel(cell=slice(0, 8))
    assert np.array_equal(rough.eps.values, exact.eps.values)
    assert np.array_equal(rough.freq.values, exact.freq.values) and rough.dos_eldiff.shape == (8, 400)
    offset = empty_lattice_dos(exact.freq.values)
    pred, true = rough.dos_eldiff.values + offset, exact.dos_eldiff.values + offset
    errors = np.array([[dos_relative_l1(pred[i], true[j]) for j in range(8)] for i in range(8)])
    own = np.diag(errors)
    others = errors[~np.eye(8, dtype=bool)].reshape(8, 7)
    assert np.all(own < np.median(others, axis=1)), errors  # a few low-contrast cells look alike
    assert own.mean() < 0.06 and own.mean() < 0.5 * others.mean()


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """8 tiny cells in two chunks (chunk files are slow to write, cells are fast)."""
    from photossl.data.generate import generate_dataset, preset_config

    tiny = {"size": 16, "grid_size": 7, "n_bands": 5, "solver_options": {"cutoff": 3.0}}  # as conftest.TINY
    out = tmp_path_factory.mktemp("rough-source") / "ds"
    generate_dataset(preset_config("sibcl-p1", n_cells=8, chunk_size=4, seed=5, **tiny), out, workers=1,
                     progress=False)
    return out


def test_rough_dataset_holds_the_same_cells_records_its_cost_and_resumes(small_dataset, tmp_path, one_torch_thread):
    exact = dataset_generate_config(small_dataset)
    config = rough_config(exact, grid_size=5)
    out = tmp_path / "rough"
    made = generate_rough_dataset(small_dataset, out, config, workers=1, progress=False)
    assert made.cells_written == exact.n_cells and made.cpu_s_per_cell > 0
    assert label_cpu_per_cell(out) == pytest.approx((made.cpu_s_per_cell, exact.n_cells))
    shas = {p.name: file_sha256(p) for p in (out / "chunks").iterdir()}
    again = generate_rough_dataset(small_dataset, out, config, workers=1, progress=False)
    assert again.cells_written == 0 and {p.name: file_sha256(p) for p in (out / "chunks").iterdir()} == shas
    assert again.cpu_s_per_cell == made.cpu_s_per_cell  # the recorded cost survives a resume
    assert 0 < measure_label_cost(config, 2)

    ratio = measure_cost_ratio(exact, config, n_cells=3, rounds=3)
    assert ratio.cells == 3 and ratio.rounds == 3 and len(ratio.per_round) == 3
    assert ratio.exact_over_rough == sorted(ratio.per_round)[1] > 0  # timings: no order asserted between them
    assert ratio.exact_per_label_s > 0 and ratio.rough_per_label_s > 0
    assert measure_cost_ratio(exact, config, n_cells=100, rounds=1).cells == exact.n_cells
    with pytest.raises(PhotosslError, match="at least one cell and one round"):
        measure_cost_ratio(exact, config, rounds=0)

    other = tmp_path / "other-cells"  # a dataset of other cells is refused
    with pytest.raises(PhotosslError, match="does not hold the cells"):
        generate_rough_dataset(small_dataset, other, rough_config(exact.__class__(**{**exact.to_dict(), "seed": 9}),
                                                                      grid_size=5), workers=1, progress=False)


def test_an_imported_dataset_cannot_be_relabelled(small_dataset, tmp_path):
    copy = tmp_path / "imported"
    shutil.copytree(small_dataset, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["config"]["solver"] = "mpb (imported)"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PhotosslError, match="not made by photossl generate"):
        dataset_generate_config(copy)
