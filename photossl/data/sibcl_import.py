"""Convert the HDF5 files published with SIB-CL and E-SSL into a photossl dataset directory.

Source layout (one file per set and polarization, e.g. ``mf1-tm.h5``; one HDF5 dataset per cell, keyed by the cell
number as a string, 0- or 1-based): ``unitcell/mpbepsimage/<i>`` (the eps MPB used, the network input),
``unitcell/{epsin, epsout, epsavg, filling, uclevel, uccoefs}/<i>``, ``mpbcal/efreq/<i>`` (625 x n_bands, k_x
fastest), ``mpbcal/grpvel/<i>`` (625 x n_bands x 3), ``mpbcal/bandgap/<i>``, ``mpbcal/{DOS, DOSeldiff, DOSn,
DOSeldiffn}/<i>`` (500 points on linspace(0, 1.2, 500)), ``universal/ucgvecs``.

What the import does, beyond renaming:
- cells are numbered 0..n-1 in the order of their source key; the key is kept in ``source_key``;
- ``dos`` = DOSn[:400] and ``dos_eldiff`` = DOSeldiffn[:400] (when DOSn is absent: DOS / sqrt(mean eps), the
  reference's own definition of DOSn, and eldiff = that - 2 pi omega);
- bands and group velocities are reordered from the reference's k_x-fastest grid to photossl's k_x-slowest
  ``sibcl_grid`` order; velocities keep their in-plane (x, y) components;
- gaps come from the bands (``gap_table``), because ``mpbcal/bandgap`` lists a varying number of gaps per cell;
- ``inputepsimage`` (the level set sampled on a non-periodic grid) and the un-normalised ``DOSeldiff`` are not copied.
Missing optional groups are skipped and listed in the manifest; missing ``unitcell/mpbepsimage`` or DOS is an error.
The level-set coefficients are kept as published: they use the reference's coordinates (r on linspace(-0.5, 0.5, N)),
not photossl's pixel centres, so they describe the cell only up to that shift.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from photossl.data.schema import (
    UNITS,
    chunk_encoding,
    coordinate,
    gap_field_coordinate,
    stamp_chunk,
    variable,
)
from photossl.data.storage import (
    CHUNK_DIR,
    FORMAT,
    FORMAT_VERSION,
    WriterLock,
    check_chunk_entries,
    chunk_name,
    file_sha256,
    lock_name,
    manifest_name,
    write_chunk,
    write_json_atomic,
)
from photossl.errors import PhotosslError
from photossl.provenance import photossl_version

PRESET = "sibcl-import"
SOLVER = "mpb (imported)"
N_SOURCE_FREQ = 500
N_KEEP = 400
SOURCE_FREQ = np.linspace(0.0, 1.2, N_SOURCE_FREQ)  # the reference's scaled-frequency axis
EPS_GROUP = "unitcell/mpbepsimage"
DOS_GROUPS = ("mpbcal/DOSn", "mpbcal/DOS")  # first present wins; the requirement is named after the second
SCALARS = {  # source group -> (variable, description)
    "unitcell/epsin": ("eps_in", "permittivity where the level-set function exceeds the level"),
    "unitcell/epsout": ("eps_out", "permittivity elsewhere"),
    "unitcell/filling": ("filling", "requested fraction of samples at or below the level (eps_out)"),
    "unitcell/epsavg": ("eps_avg_nominal", "filling * eps_out + (1 - filling) * eps_in, as published"),
    "unitcell/uclevel": ("level", "level of the Fourier sum (reference coordinates)"),
}
OPTIONAL_GROUPS = (*SCALARS, "unitcell/uccoefs", "mpbcal/efreq", "mpbcal/grpvel", "mpbcal/DOSeldiffn")
NOT_IMPORTED = ("unitcell/inputepsimage", "mpbcal/bandgap", "mpbcal/DOSeldiff")
MANIFEST = manifest_name(None)


@dataclass
class SibclImportResult:
    """What :func:`import_sibcl` did."""

    out: Path
    n_cells: int
    chunks: list[str]
    skipped: list[str] = field(default_factory=list)  # optional source groups that the file lacks
    already_done: bool = False  # the same import was already complete in ``out``


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


# ----------------------------------------------------------------------------------------------------------- reading


@dataclass
class _Source:
    """What the file holds: cell keys in order and which groups to read."""

    path: Path
    keys: list[str]
    eps_shape: tuple[int, int]
    dos_group: str
    present: list[str]
    skipped: list[str]
    grid_size: int | None = None
    n_bands: int | None = None
    coef_index: np.ndarray | None = None  # (n_coefs, 2) grid positions (gx, gy) of each flat coefficient
    coef_order: int = 0


def _fail(source: Path, message: str) -> PhotosslError:
    return PhotosslError(f"{source.name}: {message}")


def _read(handle, group: str, key: str, source: Path) -> np.ndarray:
    return next(_rows(handle, group, [key], source))[1]


def _rows(handle, group: str, keys, source: Path):
    """(key, array) of ``group/<key>`` for each key; the group is looked up once (h5py lookups dominate the cost)."""
    node = handle[group]
    for key in keys:
        try:
            yield key, np.asarray(node[key][()])
        except KeyError:
            raise _fail(source, f"{group} has no entry for cell {key}") from None


def _cell_keys(handle, source: Path) -> list[str]:
    keys = list(handle[EPS_GROUP].keys())
    if not keys:
        raise _fail(source, f"{EPS_GROUP} holds no cells")
    bad = [key for key in keys if not key.isdigit()]
    if bad:
        raise _fail(source, f"{EPS_GROUP} has a non-numeric cell key '{bad[0]}'")
    return sorted(keys, key=int)


def _coefficient_grid(handle, n_coefs: int, source: Path) -> tuple[np.ndarray, int]:
    """Grid positions of the flat coefficient list: from ``universal/ucgvecs``, else the reference's meshgrid order."""
    order = int(round((np.sqrt(n_coefs) - 1) / 2))
    if (2 * order + 1) ** 2 != n_coefs:
        raise _fail(source, f"unitcell/uccoefs holds {n_coefs} coefficients, not a (2M+1)^2 square set")
    if "universal/ucgvecs" in handle:
        gvecs = np.asarray(handle["universal/ucgvecs"][()], dtype=np.float64)
        if gvecs.shape != (n_coefs, 2) or not np.allclose(gvecs, np.round(gvecs)) or np.abs(gvecs).max() > order:
            raise _fail(source, f"universal/ucgvecs has shape {gvecs.shape}; expected ({n_coefs}, 2) integer vectors")
        index = np.round(gvecs).astype(np.int64) + order
    else:  # np.meshgrid(n, n) raveled: gx varies fastest
        g = np.arange(2 * order + 1)
        index = np.stack([np.tile(g, len(g)), np.repeat(g, len(g))], axis=1)
    if len({tuple(row) for row in index}) != n_coefs:
        raise _fail(source, "universal/ucgvecs repeats a G vector")
    return index, order


def _inspect(handle, source: Path, keys: list[str], require_dos: bool) -> _Source:
    dos_group = next((name for name in DOS_GROUPS if name in handle), None)
    if dos_group is None and require_dos:
        raise _fail(
            source, f"required group '{DOS_GROUPS[1]}' (or '{DOS_GROUPS[0]}') is missing; for a file without "
            "labels (an unlabelled pretraining set) pass --no-dos"
        )
    optional = [name for name in OPTIONAL_GROUPS if dos_group is not None or name != "mpbcal/DOSeldiffn"]
    present = [name for name in optional if name in handle]
    skipped = [name for name in optional if name not in handle]
    for group in [EPS_GROUP, *([dos_group] if dos_group else []), *present]:
        if not hasattr(handle[group], "keys"):
            raise _fail(source, f"{group} is not a group of per-cell datasets")
        missing = set(keys) - set(handle[group].keys())
        if missing:
            raise _fail(source, f"{group} has no entry for cell {min(missing, key=int)}")
    first = keys[0]
    eps = _read(handle, EPS_GROUP, first, source)
    if eps.ndim != 2 or eps.shape[0] != eps.shape[1] or eps.shape[0] < 2:
        raise _fail(source, f"{EPS_GROUP}/{first} has shape {eps.shape}; expected a square (N, N) image")
    info = _Source(source, keys, eps.shape, dos_group, present, skipped)
    if "mpbcal/efreq" in present:
        bands = _read(handle, "mpbcal/efreq", first, source)
        grid = int(round(np.sqrt(bands.shape[0]))) if bands.ndim == 2 else 0
        if bands.ndim != 2 or grid * grid != bands.shape[0]:
            raise _fail(source, f"mpbcal/efreq/{first} has shape {bands.shape}; expected (g*g k-points, n_bands)")
        info.grid_size, info.n_bands = grid, bands.shape[1]
    elif "mpbcal/grpvel" in present:
        present.remove("mpbcal/grpvel")  # velocities without bands have no k-grid to sit on
        skipped.append("mpbcal/grpvel")
    if "unitcell/uccoefs" in present:
        coefs = _read(handle, "unitcell/uccoefs", first, source)
        info.coef_index, info.coef_order = _coefficient_grid(handle, coefs.size, source)
    return info


def _validate_cells(handle, info: _Source) -> None:
    """Every eps is a finite, positive (N, N) map, every DOS 500 finite points: checked before anything is written."""
    dos_rows = _rows(handle, info.dos_group, info.keys, info.path) if info.dos_group else None
    for key, eps in _rows(handle, EPS_GROUP, info.keys, info.path):
        if eps.shape != info.eps_shape:
            raise _fail(info.path, f"cell {key}: {EPS_GROUP}/{key} has shape {eps.shape}, the others {info.eps_shape}")
        if not np.all(np.isfinite(eps)):
            raise _fail(info.path, f"cell {key}: permittivity ({EPS_GROUP}/{key}) contains NaN or infinite values")
        if np.any(eps <= 0):
            raise _fail(info.path, f"cell {key}: permittivity ({EPS_GROUP}/{key}) is <= 0 (min {eps.min():g})")
        if dos_rows is None:
            continue
        dos = next(dos_rows)[1]
        if dos.shape != (N_SOURCE_FREQ,):
            raise _fail(info.path, f"cell {key}: {info.dos_group}/{key} has shape {dos.shape}, expected (500,)")
        if not np.all(np.isfinite(dos[:N_KEEP])):
            raise _fail(info.path, f"cell {key}: {info.dos_group}/{key} contains NaN or infinite values")


def _sibcl_to_photossl_k(values: np.ndarray, grid: int) -> np.ndarray:
    """Reorder axis 0 from the reference's k_x-fastest grid to photossl's k_x-slowest ``sibcl_grid`` order."""
    return values.reshape(grid, grid, *values.shape[1:]).swapaxes(0, 1).reshape(values.shape)


def _dos_variables(stack, info: _Source, eps_mean: np.ndarray, polarization: str) -> dict:
    freq = SOURCE_FREQ[:N_KEEP]
    dos = stack(info.dos_group, np.float64)[:, :N_KEEP]
    if info.dos_group == "mpbcal/DOS":
        dos = dos / np.sqrt(eps_mean)[:, None]
    if "mpbcal/DOSeldiffn" in info.present:
        eldiff = stack("mpbcal/DOSeldiffn", np.float64)[:, :N_KEEP]
    else:
        eldiff = dos - 2 * np.pi * freq
    dos = variable(f"dos_{polarization}", dos, source=info.dos_group)
    eldiff = variable(f"dos_eldiff_{polarization}", eldiff)
    return {f"dos_{polarization}": dos, f"dos_eldiff_{polarization}": eldiff, "dos": dos, "dos_eldiff": eldiff}


def _band_variables(handle, keys, info: _Source, polarization: str) -> tuple[dict, dict]:
    from photossl.physics.gaps import gap_table
    from photossl.physics.kpoints import sibcl_grid

    path, grid = info.path, info.grid_size
    bands = []
    for key, values in _rows(handle, "mpbcal/efreq", keys, path):
        if values.shape != (grid * grid, info.n_bands):
            raise _fail(path, f"mpbcal/efreq/{key} has shape {values.shape}, the others {(grid * grid, info.n_bands)}")
        bands.append(_sibcl_to_photossl_k(values, grid))
    bands = variable(f"bands_{polarization}", np.stack(bands))
    gaps = np.stack([gap_table(b) for b in bands[1].astype(np.float64)])
    gaps_note = (f"{polarization.upper()} gap between bands n and n+1 (edges; gap-to-midgap ratio, 0 if none), "
                 "from the bands")
    variables = {f"bands_{polarization}": bands, f"gaps_{polarization}": variable(f"gaps_{polarization}", gaps,
                                                                                 long_name=gaps_note)}
    kpoints = sibcl_grid(grid, margin=0.5 / grid)  # the reference's tile centres
    coords = {"k_x": coordinate("k_x", kpoints[:, 0]), "k_y": coordinate("k_y", kpoints[:, 1]),
              "gap_field": gap_field_coordinate()}
    if "mpbcal/grpvel" in info.present:
        velocity = []
        for key, v in _rows(handle, "mpbcal/grpvel", keys, path):
            if v.ndim != 3 or v.shape[:2] != bands[1].shape[1:] or v.shape[2] < 2:
                raise _fail(path, f"mpbcal/grpvel/{key} has shape {v.shape}; expected {bands[1].shape[1:]} + (2 or 3,)")
            velocity.append(_sibcl_to_photossl_k(v[..., :2], grid))
        variables[f"group_velocity_{polarization}"] = variable(
            f"group_velocity_{polarization}", np.stack(velocity),
            long_name=f"{polarization.upper()} group velocity d omega / dk (MPB, in-plane)")
        coords["component"] = coordinate("component", np.array(["x", "y"]))
    return variables, coords


def _chunk_dataset(handle, info: _Source, start: int, stop: int, polarization: str, attrs: dict) -> xr.Dataset:
    keys = info.keys[start:stop]

    def stack(group: str, dtype) -> np.ndarray:
        return np.stack([row for _, row in _rows(handle, group, keys, info.path)]).astype(dtype)

    eps = stack(EPS_GROUP, np.float32)
    eps_mean = eps.astype(np.float64).mean(axis=(1, 2))
    variables = {
        "eps": variable("eps", eps, long_name="relative permittivity (MPB's eps, as published)"),
        "source_key": variable("source_key", [int(k) for k in keys]),
        "eps_mean": variable("eps_mean", eps_mean),
    }
    coords = {"cell": coordinate("cell", np.arange(start, stop))}
    for group, (name, description) in SCALARS.items():
        if group in info.present:
            variables[name] = variable(name, stack(group, np.float64).reshape(len(keys)), long_name=description)
    if "unitcell/epsout" in info.present:
        # MPB's eps is smoothed at interfaces: count the pixels that hold eps_out exactly (to float32 precision)
        eps_out = variables["eps_out"][1].astype(np.float32)[:, None, None]
        fraction = np.isclose(eps, eps_out, rtol=1e-6, atol=0).mean(axis=(1, 2))
        variables["fill_fraction"] = variable("fill_fraction", fraction)
    if "unitcell/uccoefs" in info.present:
        side = 2 * info.coef_order + 1
        grid = np.zeros((len(keys), side, side), dtype=np.complex128)
        grid[:, info.coef_index[:, 0], info.coef_index[:, 1]] = stack("unitcell/uccoefs", np.complex128).reshape(
            len(keys), -1
        )
        note = "Fourier coefficient c_G of the level-set function, G = (gx, gy), reference coordinates"
        variables["coef_real"] = variable("coef_real", grid.real.copy(), long_name=note)
        variables["coef_imag"] = variable("coef_imag", grid.imag.copy(), long_name=note)
        orders = np.arange(-info.coef_order, info.coef_order + 1)
        coords.update(gx=coordinate("gx", orders), gy=coordinate("gy", orders))
    if info.dos_group is not None:
        variables.update(_dos_variables(stack, info, eps_mean, polarization))
        coords["freq"] = coordinate("freq", SOURCE_FREQ[:N_KEEP])
    if info.grid_size is not None:
        band_variables, band_coords = _band_variables(handle, keys, info, polarization)
        variables.update(band_variables)
        coords.update(band_coords)
    return stamp_chunk(xr.Dataset(variables, coords=coords, attrs=dict(attrs)), start, stop)


# ----------------------------------------------------------------------------------------------------------- writing


def _targets(info: _Source) -> list[str]:
    targets = ["dos"] if info.dos_group else []
    if info.grid_size is not None:
        targets += ["bands", "gaps"] + (["group_velocity"] if "mpbcal/grpvel" in info.present else [])
    return targets


def _same_import(manifest: dict, config: dict) -> bool:
    stored = manifest.get("config", {})
    return manifest.get("format") == FORMAT and all(
        stored.get(key) == config[key] for key in ("preset", "source_sha256", "polarizations", "chunk_size", "n_cells")
    )


def _existing(out: Path, config: dict, overwrite: bool) -> dict | None:
    """The manifest in ``out`` when it holds this same import; refuses any other non-empty ``out`` (read-only)."""
    if out.exists() and not out.is_dir():
        raise PhotosslError(f"--out {out} exists and is not a directory")
    if not out.exists() or not _contents(out):
        return None
    manifest = None
    if (out / MANIFEST).exists():
        try:
            manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = None
    if isinstance(manifest, dict) and _same_import(manifest, config):
        return manifest
    if not overwrite:
        what = "a different dataset" if manifest is not None else "files that are not a photossl dataset"
        raise PhotosslError(f"--out {out} already holds {what}; choose an empty directory or pass --overwrite")
    if manifest is None and not (out / CHUNK_DIR).is_dir():
        raise PhotosslError(f"--out {out} is not a photossl dataset; refusing to overwrite it, choose another --out")
    if any(out.glob("generate*.lock")):
        raise PhotosslError(f"{out} is locked by a writer; not overwriting it (delete the lock file if none runs)")
    return None


def _contents(out: Path) -> list[Path]:
    """Everything in ``out`` but lock files (a lock alone is for the writer lock to judge, live or stale)."""
    return [path for path in out.iterdir() if not path.name.endswith(".lock")]


def _clear(out: Path) -> None:
    """Remove a dataset's own files (split files belong to the data they split); leaves anything else."""
    shutil.rmtree(out / CHUNK_DIR, ignore_errors=True)
    for stale in [*out.glob("manifest*.json"), *out.glob("splits-seed*.json")]:
        stale.unlink()


def _chunks_intact(out: Path, manifest: dict) -> bool:
    if not manifest.get("complete") or any(key not in manifest for key in ("config", "chunks", "n_cells")):
        return False
    check_chunk_entries(manifest, out / MANIFEST)  # its names are opened next
    chunks = manifest["chunks"]
    return all(
        (out / CHUNK_DIR / name).exists() and file_sha256(out / CHUNK_DIR / name) == entry.get("sha256")
        for name, entry in chunks.items()
    )


def import_sibcl(
    source: str | Path,
    out: str | Path,
    polarization: str = "tm",
    chunk_size: int = 1024,
    overwrite: bool = False,
    progress: bool = False,
    require_dos: bool = True,
) -> SibclImportResult:
    """Convert a SIB-CL / E-SSL h5 file into a photossl dataset in ``out`` (chunks, then the manifest, atomically).

    Rerunning the same import into the same directory is a no-op when it completed (and finishes it otherwise);
    any other non-empty ``out`` is refused unless ``overwrite``. Every cell is validated before anything is written.
    ``require_dos=False`` accepts files without DOS groups (the published unlabelled pretraining sets).
    """
    import h5py

    source, out = Path(source), Path(out)
    if polarization not in ("tm", "te"):
        raise PhotosslError(f"polarization must be 'tm' or 'te', got {polarization!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise PhotosslError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not source.is_file():
        raise PhotosslError(f"SIB-CL file not found: {source}")
    source_sha = file_sha256(source)
    try:
        handle = h5py.File(source, "r")
    except OSError as err:
        raise PhotosslError(f"cannot read {source.name}: not a readable HDF5 file ({_one_line(err)})") from None
    try:
        with handle:
            if EPS_GROUP not in handle:
                raise _fail(source, f"required group '{EPS_GROUP}' is missing; this is not a SIB-CL / E-SSL file")
            keys = _cell_keys(handle, source)
            info = _inspect(handle, source, keys, require_dos)
            config = {
                "preset": PRESET,
                "source_file": source.name,
                "source_sha256": source_sha,
                "seed": None,
                "n_cells": len(keys),
                "chunk_size": chunk_size,
                "polarizations": [polarization],
                "grid_size": info.grid_size,
                "n_bands": info.n_bands,
                "targets": _targets(info),
                "solver": SOLVER,
                "solver_options": {},
                "imported_groups": [EPS_GROUP, *([info.dos_group] if info.dos_group else []), *info.present],
                "skipped_groups": info.skipped,
                "not_imported_groups": [name for name in NOT_IMPORTED if name in handle],
            }
            existing = _existing(out, config, overwrite)
            names = [chunk_name(start) for start in range(0, len(keys), chunk_size)]
            if existing is not None and _chunks_intact(out, existing):
                return SibclImportResult(out, len(keys), names, info.skipped, already_done=True)
            _validate_cells(handle, info)
            if existing is None and out.exists() and _contents(out):
                _clear(out)  # only reached with overwrite, after the new data proved valid
            attrs = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "photossl_version": photossl_version(),
                "preset": PRESET,
                "config": json.dumps(config, sort_keys=True),
                "solver": SOLVER,
                "solver_options": "{}",
                "dos_method": {None: "none", "mpbcal/DOSn": "imported (DOSn)"}.get(
                    info.dos_group, "imported (DOS / sqrt(eps_mean))"
                ),
                "units": UNITS,
                "source_file": source.name,
                "source_sha256": source_sha,
            }
            out.mkdir(parents=True, exist_ok=True)
            with WriterLock(out / lock_name(None)):
                _write_all(handle, info, out, config, attrs, polarization, names, progress)
    except PhotosslError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        raise PhotosslError(f"cannot read {source.name}: {_one_line(err)}") from None
    return SibclImportResult(out, len(keys), names, info.skipped)


def _write_all(handle, info, out, config, attrs, polarization, names, progress) -> None:
    (out / CHUNK_DIR).mkdir(exist_ok=True)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "photossl_version": photossl_version(),
        "config": config,
        "n_cells": config["n_cells"],
        "chunk_size": config["chunk_size"],
        "chunks": {},
        "complete": False,
    }
    write_json_atomic(out / MANIFEST, manifest)  # marks the directory as this import, incomplete, from the start
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config["n_cells"], unit="cell", desc="import-sibcl")
    chunk_size = config["chunk_size"]
    for name, start in zip(names, range(0, config["n_cells"], chunk_size)):
        stop = min(start + chunk_size, config["n_cells"])
        dataset = _chunk_dataset(handle, info, start, stop, polarization, attrs)
        digest = write_chunk(dataset, out / CHUNK_DIR / name, chunk_encoding(dataset))
        manifest["chunks"][name] = {"start": start, "stop": stop, "sha256": digest}
        write_json_atomic(out / MANIFEST, manifest)
        if bar is not None:
            bar.update(stop - start)
    if bar is not None:
        bar.close()
    manifest["complete"] = True
    write_json_atomic(out / MANIFEST, manifest)
