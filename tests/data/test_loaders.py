"""Torch datasets over photossl datasets: normalisation, target selection, indices, errors."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader

from photossl.data.loaders import (
    CellDataset,
    UnlabelledCellDataset,
    budget_indices,
    load_arrays,
    make_splits,
    target_variables,
)
from photossl.errors import PhotosslError

N_CELLS, SIZE, N_FREQ, N_K, N_BANDS = 12, 8, 20, 9, 4


def tiny_dataset(first_cell: int = 0, seed: int = 0) -> xr.Dataset:
    """A few cells with the photossl layout's variable names and dims; values encode the cell for easy checks."""
    rng = np.random.default_rng(seed)
    eps_in = rng.uniform(1, 20, N_CELLS)
    eps_out = rng.uniform(1, 20, N_CELLS)
    mask = rng.random((N_CELLS, SIZE, SIZE)) < 0.5
    eps = np.where(mask, eps_in[:, None, None], eps_out[:, None, None]).astype(np.float32)
    cells = np.arange(first_cell, first_cell + N_CELLS, dtype=np.int64)
    freq = np.linspace(0, 1.2, 25)[:N_FREQ]
    dos = rng.random((N_CELLS, N_FREQ)) + cells[:, None]
    return xr.Dataset(
        {
            "eps": (("cell", "x", "y"), eps),
            "eps_mean": (("cell",), eps.astype(np.float64).mean(axis=(1, 2))),
            "dos_tm": (("cell", "freq"), dos),
            "dos_eldiff_tm": (("cell", "freq"), dos - 2 * np.pi * freq),
            "dos": (("cell", "freq"), dos),
            "dos_eldiff": (("cell", "freq"), dos - 2 * np.pi * freq, {"units": "a/2pic"}),
            "bands_tm": (("cell", "k", "band"), rng.random((N_CELLS, N_K, N_BANDS)).astype(np.float32)),
            "gaps_tm": (("cell", "band_pair", "gap_field"), rng.random((N_CELLS, N_BANDS - 1, 3))),
            "n_solved": (("cell",), rng.integers(1, 9, N_CELLS)),
        },
        coords={"cell": cells, "freq": freq, "k_x": ("k", np.arange(N_K) / N_K), "k_y": ("k", np.arange(N_K) / N_K)},
    )


@pytest.fixture
def chunk_file(tmp_path):
    path = tmp_path / "chunks" / "chunk-00000000.nc"
    path.parent.mkdir()
    tiny_dataset().to_netcdf(path, engine="h5netcdf")
    return path


def test_images_are_normalised_and_targets_match_rows():
    ds = tiny_dataset()
    data = CellDataset(ds)
    assert len(data) == N_CELLS
    image, target = data[3]
    assert image.shape == (1, SIZE, SIZE) and image.dtype == torch.float32
    expected = (ds["eps"].values[3].astype(np.float64) - 1.0) / 19.0
    np.testing.assert_allclose(image[0].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(target.numpy(), ds["dos_eldiff"].values[3], rtol=1e-6)
    assert data.normalisation == (1.0, 19.0) and data.target_name == "dos_eldiff"
    assert data.target_attrs == {"units": "a/2pic"}


def test_chunk_file_and_dataset_give_the_same_tensors(chunk_file):
    from_file = CellDataset(chunk_file, target="dos")
    from_memory = CellDataset(xr.open_dataset(chunk_file, engine="h5netcdf"), target="dos")
    assert torch.equal(from_file.images, from_memory.images) and torch.equal(from_file.targets, from_memory.targets)
    np.testing.assert_allclose(from_file.targets.numpy(), tiny_dataset()["dos"].values, rtol=1e-6)


def test_indices_select_cells_in_the_given_order():
    ds = tiny_dataset(first_cell=100)
    data = CellDataset(ds, target="dos", indices=[7, 2, 2, 11])
    assert len(data) == 4
    assert data.cell_ids.tolist() == [107, 102, 102, 111]
    for item, row in enumerate([7, 2, 2, 11]):
        np.testing.assert_allclose(data[item][1].numpy(), ds["dos"].values[row], rtol=1e-6)
        np.testing.assert_allclose(data[item][0][0].numpy() * 19 + 1, ds["eps"].values[row], rtol=1e-5)
    torch_indices = CellDataset(ds, target="dos", indices=torch.tensor([7, 2, 2, 11]))
    assert torch.equal(torch_indices.targets, data.targets)


def test_any_cell_variable_is_a_target_with_its_shape_kept():
    ds = tiny_dataset()
    bands = CellDataset(ds, target="bands_tm")
    assert bands.target_shape == (N_K, N_BANDS)
    np.testing.assert_array_equal(bands[5][1].numpy(), ds["bands_tm"].values[5])
    flat = CellDataset(ds, target="gaps_tm", flatten=True)
    assert flat.targets.shape == (N_CELLS, (N_BANDS - 1) * 3)
    scalar = CellDataset(ds, target="eps_mean", dtype=torch.float64)
    assert scalar.targets.shape == (N_CELLS,) and scalar.targets.dtype == torch.float64
    counts = CellDataset(ds, target="n_solved")
    assert counts.targets.dtype == torch.int64
    assert {"dos", "dos_eldiff", "bands_tm", "gaps_tm", "eps", "eps_mean"} <= set(target_variables(ds))
    assert "freq" not in target_variables(ds) and "k_x" not in target_variables(ds)


def test_missing_target_lists_the_available_ones():
    with pytest.raises(PhotosslError, match=r"target 'dos_te' is not in the dataset; available targets: .*bands_tm"):
        CellDataset(tiny_dataset(), target="dos_te")
    with pytest.raises(PhotosslError, match="'freq' has no leading 'cell' dimension"):
        CellDataset(tiny_dataset(), target="freq")


def test_images_only():
    ds = tiny_dataset()
    for data in (CellDataset(ds, target=None, indices=[1, 4]), UnlabelledCellDataset(ds, indices=[1, 4])):
        item = data[1]
        assert isinstance(item, torch.Tensor) and item.shape == (1, SIZE, SIZE)
        assert data.targets is None and data.target_shape == ()
        np.testing.assert_allclose(item[0].numpy(), (ds["eps"].values[4] - 1) / 19, rtol=1e-5)
    images, targets = load_arrays(ds, None)
    assert images.shape == (N_CELLS, 1, SIZE, SIZE) and targets is None


def test_normalisation_is_configurable():
    ds = tiny_dataset()
    raw = CellDataset(ds, normalise=False)
    assert raw.normalisation is None
    np.testing.assert_array_equal(raw.images[:, 0].numpy(), ds["eps"].values)
    custom = CellDataset(ds, normalisation=(10.0, 5.0), dtype=torch.float64)
    assert custom.normalisation == (10.0, 5.0) and custom.images.dtype == torch.float64
    np.testing.assert_allclose(custom.images[:, 0].numpy(), (ds["eps"].values.astype(np.float64) - 10) / 5)
    with pytest.raises(PhotosslError, match="normalisation"):
        CellDataset(ds, normalisation=(1.0, 0.0))


def test_bad_indices_and_bad_permittivity_are_refused():
    ds = tiny_dataset()
    with pytest.raises(PhotosslError, match=f"cell index {N_CELLS} is outside"):
        CellDataset(ds, indices=[0, N_CELLS])
    with pytest.raises(PhotosslError, match="1-D array of integers"):
        CellDataset(ds, indices=[0.5])
    with pytest.raises(IndexError):
        CellDataset(ds)[N_CELLS]
    broken = ds.copy(deep=True)
    broken["eps"].values[6, 0, 0] = np.nan
    with pytest.raises(PhotosslError, match="cell 6 contains NaN"):
        CellDataset(broken)
    CellDataset(broken, indices=[0, 1])  # cells that are fine still load
    with pytest.raises(PhotosslError, match="no 'eps' variable"):
        CellDataset(ds.drop_vars("eps"))


def test_missing_file_is_a_one_line_error(tmp_path):
    with pytest.raises(PhotosslError, match="not found"):
        CellDataset(tmp_path / "nothing.nc")


def test_works_with_splits_budgets_and_a_dataloader():
    ds = tiny_dataset()
    splits = make_splits(N_CELLS, seed=0, n_test=2, n_validation=2)
    chosen = budget_indices(splits, 5, seed=1)
    data = CellDataset(ds, indices=chosen)
    assert set(data.cell_ids) == set(chosen) and not set(chosen) & set(splits.test)
    images, targets = next(iter(DataLoader(data, batch_size=4, shuffle=False)))
    assert images.shape == (4, 1, SIZE, SIZE) and targets.shape == (4, N_FREQ)


def test_reads_a_generated_dataset_directory(tmp_path):
    from photossl.data import generate_dataset, open_dataset, preset_config

    config = preset_config("sibcl-p1", n_cells=6, chunk_size=4, size=16, grid_size=5, n_bands=4, seed=3)
    generate_dataset(config, tmp_path / "ds", workers=1, progress=False)
    reference = open_dataset(tmp_path / "ds")
    splits = make_splits(6, seed=0, n_test=2, n_validation=1)
    data = CellDataset(tmp_path / "ds", target="dos_eldiff", indices=splits.labelled)
    assert len(data) == 3 and data.cell_ids.tolist() == splits.labelled.tolist()
    np.testing.assert_array_equal(data.targets.numpy(), reference["dos_eldiff"].values[splits.labelled])
    np.testing.assert_allclose(data.images[:, 0].numpy(), (reference["eps"].values[splits.labelled] - 1) / 19,
                               rtol=1e-6)
    bands = CellDataset(tmp_path / "ds", target="bands_tm")
    assert bands.target_shape == (25, 4)
    assert UnlabelledCellDataset(tmp_path / "ds").images.shape == (6, 1, 16, 16)


def test_dataset_directory_loads_only_what_is_needed_and_names_missing_targets(tmp_path):
    from photossl.data import generate_dataset, preset_config

    config = preset_config("sibcl-p1", n_cells=3, chunk_size=2, size=8, targets=())
    generate_dataset(config, tmp_path / "ds", workers=1, progress=False)
    images, _ = load_arrays(tmp_path / "ds", None)
    assert images.shape == (3, 1, 8, 8)
    assert CellDataset(tmp_path / "ds", target="eps_mean").targets.shape == (3,)
    with pytest.raises(PhotosslError, match=r"no variable 'dos_eldiff'; available targets: .*eps_mean"):
        CellDataset(tmp_path / "ds")
