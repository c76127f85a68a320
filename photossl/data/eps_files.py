"""Reading permittivity maps from files: the one reader behind ``photossl bands --eps`` and ``photossl predict``.

Accepted inputs: a photossl dataset folder or NetCDF file (variable ``eps``), a ``.npy`` array, a ``.npz`` archive (the
array named by ``key``, or its only one), and an HDF5 file (``.h5``, ``.hdf5``; also a ``.nc`` without ``eps``): the
dataset ``key``, else SIB-CL's layout ``unitcell/mpbepsimage/<i>`` (one dataset per cell, stacked in numeric key
order), else a dataset named ``eps``, else its only 2-D or 3-D dataset. Every unreadable or ambiguous file is one
PhotosslError line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photossl.errors import PhotosslError

SIBCL_EPS_GROUP = "unitcell/mpbepsimage"
SUFFIXES = (".nc", ".npy", ".npz", ".h5", ".hdf5")


@dataclass
class EpsFile:
    """What a permittivity file holds: ``eps`` as stored ((N, N), (B, N, N), ...; not yet checked) and the cells'
    ids (a dataset's ``cell`` coordinate; None when the file has none)."""

    eps: np.ndarray
    cell_ids: np.ndarray | None = None


def _read_hdf5(path: Path, key: str | None) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as handle:
        if key is not None:
            if key not in handle or not isinstance(handle[key], h5py.Dataset):
                raise PhotosslError(f"{path}: no dataset '{key}'")
            return handle[key][()]
        if SIBCL_EPS_GROUP in handle and isinstance(handle[SIBCL_EPS_GROUP], h5py.Group):
            group = handle[SIBCL_EPS_GROUP]
            names = sorted(group, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
            if not names:
                raise PhotosslError(f"{path}: {SIBCL_EPS_GROUP} holds no cells")
            return np.stack([group[name][()] for name in names])
        if isinstance(handle.get("eps"), h5py.Dataset):
            return handle["eps"][()]
        found = []
        handle.visititems(lambda name, obj: found.append(name) if getattr(obj, "ndim", 0) in (2, 3) else None)
        if len(found) != 1:
            raise PhotosslError(f"{path}: name the permittivity dataset with --key (found {len(found)} arrays)")
        return handle[found[0]][()]


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        names = [key] if key else list(archive.files)
        if len(names) != 1 or names[0] not in archive.files:
            raise PhotosslError(f"{path}: name the array with --key (has {', '.join(archive.files) or 'none'})")
        return archive[names[0]]


def _read_dataset(path: Path) -> EpsFile | None:
    """A photossl dataset folder or NetCDF file through xarray; None for a NetCDF file without ``eps``."""
    from photossl.data.loaders import open_cells

    dataset = open_cells(path, ["eps"])
    try:
        if "eps" not in dataset:
            return None
        ids = dataset["cell"].values if "cell" in dataset.coords else None
        return EpsFile(np.asarray(dataset["eps"].values), ids)
    finally:
        dataset.close()


def read_eps_file(path: str | Path, key: str | None = None) -> EpsFile:
    """The permittivity stored in ``path`` (a dataset folder, .nc, .npy, .npz, .h5 or .hdf5), as stored;
    ``key`` names the array inside an .npz / HDF5 / NetCDF file."""
    path, key = Path(path), key or None
    if not path.exists():
        raise PhotosslError(f"input not found: {path}")
    suffix = path.suffix.lower()
    if not path.is_dir() and suffix not in SUFFIXES:
        raise PhotosslError(f"{path}: unsupported input '{path.suffix}' (use a dataset folder, .nc, .npy, .npz or .h5)")
    try:
        if path.is_dir() or (suffix == ".nc" and key is None):
            found = _read_dataset(path)
            if found is not None:
                return found
        if suffix == ".npy":
            return EpsFile(np.load(path, allow_pickle=False))
        if suffix == ".npz":
            return EpsFile(_read_npz(path, key))
        return EpsFile(_read_hdf5(path, key))
    except PhotosslError:
        raise
    except (OSError, ValueError, KeyError) as err:
        cause = " ".join(str(err).split()) or type(err).__name__
        raise PhotosslError(f"cannot read {path}: {cause}") from None


def read_cells(source: str | Path, key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(raw ε (B, N, N) float64, cell ids (B,)) from any input of :func:`read_eps_file`; one map (N, N) and
    (B, 1, N, N) batches are accepted. Text, complex or non-square maps raise one PhotosslError line."""
    from photossl.physics.cells import check_eps_dtype

    path = Path(source)
    found = read_eps_file(path, key)
    eps = check_eps_dtype(np.asarray(found.eps), f"{path}: permittivity").astype(np.float64)
    if eps.ndim == 2:
        eps = eps[None]
    if eps.ndim == 4 and eps.shape[1] == 1:
        eps = eps[:, 0]
    if eps.ndim != 3 or eps.shape[1] != eps.shape[2]:
        raise PhotosslError(f"{path}: permittivity must be (N, N) or (B, N, N), got shape {eps.shape}")
    ids = np.arange(eps.shape[0]) if found.cell_ids is None else np.asarray(found.cell_ids)
    return eps, ids
