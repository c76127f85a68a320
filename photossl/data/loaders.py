"""Torch datasets over a photossl dataset: normalised permittivity images and any per-cell target variable.

The selected cells are read once into memory as tensors (20k 32x32 cells are 80 MB as float32), so indexing costs
nothing and a DataLoader needs no workers. Images are (1, N, N) with the SIB-CL / E-SSL input normalisation
(eps - 1) / 19 by default, which maps eps in [1, 20] onto [0, 1].
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from photossl.data.sibcl_import import SibclImportResult, import_sibcl
from photossl.data.splits import (
    DatasetSplits,
    budget_indices,
    load_splits,
    make_splits,
    save_splits,
    splits_for_dataset,
    splits_path,
)
from photossl.errors import PhotosslError

__all__ = [
    "CellDataset",
    "DatasetSplits",
    "EPS_NORMALISATION",
    "SibclImportResult",
    "UnlabelledCellDataset",
    "budget_indices",
    "import_sibcl",
    "load_arrays",
    "load_splits",
    "make_splits",
    "open_cells",
    "save_splits",
    "splits_for_dataset",
    "splits_path",
    "target_variables",
]

EPS_NORMALISATION = (1.0, 19.0)  # (offset, scale): image = (eps - offset) / scale, the SIB-CL / E-SSL input
IMAGE_VARIABLE = "eps"


def open_cells(source: xr.Dataset | str | Path, variables: list[str] | None = None) -> xr.Dataset:
    """``source`` as an xarray Dataset: a dataset directory (via ``open_dataset``), one NetCDF file, or a Dataset.

    ``variables`` limits what a dataset directory loads into memory (group velocities alone are 1 GB for 20k cells);
    a name that the dataset lacks raises PhotosslError listing the target variables it has.
    """
    if isinstance(source, xr.Dataset):
        return source
    path = Path(source)
    if path.is_dir():
        from photossl.data.storage import chunk_files, open_dataset

        try:
            return open_dataset(path, variables=variables)
        except PhotosslError as err:
            if variables is None or "has no variable" not in str(err):
                raise
            chunks = chunk_files(path)
            with xr.open_dataset(chunks[0], engine="h5netcdf") as first:  # lazily: only the names are needed
                missing = [name for name in variables if name not in first.variables]
                available = ", ".join(target_variables(first)) or "none"
            message = f"dataset {path} has no variable '{missing[0]}'; available targets: {available}"
            raise PhotosslError(message) from None
    if not path.exists():
        raise PhotosslError(f"dataset not found: {path}")
    try:
        return xr.open_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as err:
        raise PhotosslError(f"cannot read {path}: {err}") from None


def target_variables(dataset: xr.Dataset) -> list[str]:
    """Names of the variables that can serve as targets: every one whose leading dimension is ``cell``."""
    names = list(dataset.data_vars) + [name for name in dataset.coords if name != "cell"]
    return sorted(name for name in names if dataset[name].dims[:1] == ("cell",))


def _needed(target: str | None) -> list[str]:
    return [IMAGE_VARIABLE] if target in (None, IMAGE_VARIABLE) else [IMAGE_VARIABLE, target]


def _positions(indices, n_cells: int) -> np.ndarray:
    """Validated int64 positions along ``cell``; None means all cells."""
    if indices is None:
        return np.arange(n_cells, dtype=np.int64)
    if isinstance(indices, torch.Tensor):
        indices = indices.detach().cpu().numpy()
    array = np.asarray(indices)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise PhotosslError(f"indices must be a 1-D array of integers, got dtype {array.dtype} shape {array.shape}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n_cells):
        bad = array[(array < 0) | (array >= n_cells)][0]
        raise PhotosslError(f"cell index {bad} is outside the dataset's {n_cells} cells")
    return array


def _read_rows(variable: xr.DataArray, positions: np.ndarray) -> np.ndarray:
    """Rows ``positions`` of ``variable`` in the order given; reads each distinct row once, in increasing order."""
    unique, inverse = np.unique(positions, return_inverse=True)
    if len(unique) == variable.sizes["cell"] and np.array_equal(unique, np.arange(len(unique))):
        rows = variable.values
    else:
        rows = variable.isel(cell=unique).values
    return rows[inverse]


def load_arrays(
    source: xr.Dataset | str | Path,
    target: str | None = "dos_eldiff",
    indices=None,
    normalise: bool = True,
    normalisation: tuple[float, float] = EPS_NORMALISATION,
    dtype: torch.dtype = torch.float32,
    flatten: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images (B, 1, N, N), targets (B, ...) or None) for the cells at ``indices`` (positions along ``cell``).

    Images are (eps - offset) / scale with ``normalisation = (offset, scale)`` when ``normalise``, raw eps otherwise.
    Targets keep their trailing shape (``dos``: (B, 400); ``bands_tm``: (B, K, n_bands)) unless ``flatten``, which
    gives (B, prod(trailing)); floating targets are cast to ``dtype``, integer ones stay int64.
    """
    dataset = open_cells(source, _needed(target))
    try:
        return _load(dataset, target, indices, normalise, normalisation, dtype, flatten)
    finally:
        if dataset is not source:
            dataset.close()


def _load(dataset, target, indices, normalise, normalisation, dtype, flatten):
    if IMAGE_VARIABLE not in dataset:
        raise PhotosslError(f"dataset has no '{IMAGE_VARIABLE}' variable (has {', '.join(sorted(dataset.variables))})")
    eps = dataset[IMAGE_VARIABLE]
    if eps.ndim != 3 or eps.dims[0] != "cell":
        raise PhotosslError(f"'{IMAGE_VARIABLE}' must have dims (cell, x, y), got {eps.dims}")
    if target is not None:
        available = target_variables(dataset)
        if target not in available:
            where = "has no leading 'cell' dimension" if target in dataset.variables else "is not in the dataset"
            raise PhotosslError(f"target '{target}' {where}; available targets: {', '.join(available) or 'none'}")
    offset, scale = (float(v) for v in normalisation)
    if not (np.isfinite(offset) and np.isfinite(scale)) or scale == 0:
        raise PhotosslError(f"normalisation must be a finite (offset, scale) with scale != 0, got {normalisation}")

    positions = _positions(indices, eps.sizes["cell"])
    eps_rows = _read_rows(eps, positions)
    if not np.all(np.isfinite(eps_rows)) or np.any(eps_rows <= 0):
        bad = positions[np.flatnonzero(~np.all(np.isfinite(eps_rows) & (eps_rows > 0), axis=(1, 2)))[0]]
        raise PhotosslError(f"permittivity of cell {bad} contains NaN, infinite or <= 0 values")
    images = torch.from_numpy(np.ascontiguousarray(eps_rows)).to(dtype).unsqueeze(1)
    if normalise:
        images = (images - offset) / scale
    if target is None:
        return images, None

    rows = _read_rows(dataset[target], positions)
    if rows.dtype.kind in "iub":
        targets = torch.from_numpy(np.ascontiguousarray(rows.astype(np.int64)))
    elif rows.dtype.kind == "f":
        _check_labelled(rows, positions, target)
        targets = torch.from_numpy(np.ascontiguousarray(rows)).to(dtype)
    else:
        raise PhotosslError(f"target '{target}' has non-numeric dtype {rows.dtype}")
    if flatten:
        targets = targets.reshape(len(positions), -1)
    return images, targets


def _check_labelled(rows: np.ndarray, positions: np.ndarray, target: str) -> None:
    """Refuse target rows that are not finite: NaN marks a cell generated without labels (``label_cells``)."""
    if np.isfinite(rows).all():  # also no rows at all
        return
    finite = np.isfinite(rows.reshape(len(rows), -1))
    row = int(np.flatnonzero(~finite.all(axis=1))[0])
    if not finite[row].any():
        raise PhotosslError(
            f"cell {positions[row]} has no '{target}' label: its dataset was generated with labels for some cells "
            "only; rerun photossl generate with the same options into it (without a label subset) to label them all"
        )
    raise PhotosslError(f"the '{target}' label of cell {positions[row]} contains NaN or infinite values")


class CellDataset(Dataset):
    """(image (1, N, N), target) pairs of the selected cells, held in memory as tensors.

    ``dataset``: an xarray Dataset, a dataset directory, or one NetCDF chunk file. ``target``: any variable whose
    leading dimension is ``cell`` (see :func:`target_variables`), or None for images only (``__getitem__`` then
    returns the image alone). ``indices``: positions along ``cell`` (for example ``splits.test`` or
    :func:`budget_indices`), None for all cells; item ``i`` is cell ``indices[i]``. The normalisation used is kept
    in ``self.normalisation`` (None when ``normalise`` is False) so that a model can record it.
    """

    def __init__(
        self,
        dataset: xr.Dataset | str | Path,
        target: str | None = "dos_eldiff",
        indices=None,
        normalise: bool = True,
        dtype: torch.dtype = torch.float32,
        normalisation: tuple[float, float] = EPS_NORMALISATION,
        flatten: bool = False,
    ):
        source = open_cells(dataset, _needed(target))
        try:
            self.images, self.targets = _load(source, target, indices, normalise, normalisation, dtype, flatten)
            self.indices = _positions(indices, source[IMAGE_VARIABLE].sizes["cell"])
            cell_ids = source["cell"].values if "cell" in source.coords else np.arange(source.sizes["cell"])
            self.cell_ids = np.asarray(cell_ids, dtype=np.int64)[self.indices]  # global cell index of each item
            self.target_attrs = dict(source[target].attrs) if target is not None else {}
        finally:
            if source is not dataset:
                source.close()
        self.target_name = target
        self.normalisation = tuple(float(v) for v in normalisation) if normalise else None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, item):
        if isinstance(item, Integral) and not -len(self) <= item < len(self):
            raise IndexError(f"index {item} out of range for {len(self)} cells")
        if self.targets is None:
            return self.images[item]
        return self.images[item], self.targets[item]

    @property
    def target_shape(self) -> tuple[int, ...]:
        """Shape of one target, () when there is none."""
        return () if self.targets is None else tuple(self.targets.shape[1:])

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """All items at once: (images,) or (images, targets), e.g. for a TensorDataset on an accelerator."""
        return (self.images,) if self.targets is None else (self.images, self.targets)


class UnlabelledCellDataset(CellDataset):
    """Normalised images (1, N, N) only, for self-supervised pretraining (``CellDataset`` with ``target=None``)."""

    def __init__(
        self,
        dataset: xr.Dataset | str | Path,
        indices=None,
        normalise: bool = True,
        dtype: torch.dtype = torch.float32,
        normalisation: tuple[float, float] = EPS_NORMALISATION,
    ):
        super().__init__(dataset, None, indices, normalise, dtype, normalisation)

