"""On-disk layout of a photossl dataset: chunk files, manifests, the writer lock, checksums, and ``open_dataset``.

A dataset is a directory::

    DIR/manifest.json                      chunks written by unsharded runs
    DIR/manifest-shard<I>of<N>.json        chunks written by ``--shard I/N`` runs (any number of these)
    DIR/chunks/chunk-<start:08d>.nc        cells [start, stop), NetCDF4 written by xarray's h5netcdf engine
    DIR/generate.lock                      while an unsharded writer runs (generate-shard<I>of<N>.lock for a shard)

Every manifest holds the full generate config and, per chunk file, its cell range and sha256. Readers take the union
of all manifests found (in one directory or several), so shards may write into one shared directory or into separate
ones. Chunk files and manifests are written to a temporary file in the same directory and renamed into place, so a
killed writer leaves either the old or the new file, never a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np

from photossl.data.schema import CHUNK_ATTRS, dataset_sha256  # noqa: F401 - part of the storage API
from photossl.errors import PhotosslError
from photossl.files import replace_atomically, write_error
from photossl.files import write_json_atomic as _write_json

FORMAT = "photossl-dataset"
FORMAT_VERSION = 1
CHUNK_DIR = "chunks"

__all__ = [
    "CHUNK_DIR",
    "FORMAT",
    "FORMAT_VERSION",
    "WriterLock",
    "bundled_dataset_path",
    "check_chunk_entries",
    "chunk_files",
    "chunk_name",
    "config_differences",
    "dataset_sha256",
    "file_sha256",
    "lock_name",
    "manifest_name",
    "open_dataset",
    "read_manifests",
    "remove_dead_tmp_files",
    "write_chunk",
    "write_json_atomic",
]


def chunk_name(start: int) -> str:
    """File name (inside ``DIR/chunks``) of the chunk whose first cell is ``start``."""
    return f"chunk-{start:08d}.nc"


def manifest_name(shard: tuple[int, int] | None) -> str:
    """``manifest.json`` for an unsharded writer, ``manifest-shard<I>of<N>.json`` for shard I of N."""
    return "manifest.json" if shard is None else f"manifest-shard{shard[0]}of{shard[1]}.json"


def lock_name(shard: tuple[int, int] | None) -> str:
    """``generate.lock`` for an unsharded writer, ``generate-shard<I>of<N>.lock`` for shard I of N."""
    return "generate.lock" if shard is None else f"generate-shard{shard[0]}of{shard[1]}.lock"


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tmp_path(path: Path) -> Path:
    # Hidden, and tagged with the writer's pid so that a later run can tell a dead writer's leftovers.
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_json_atomic(path: str | Path, content: dict) -> None:
    """Write a manifest: ``content`` as sorted JSON, through a temporary file that names this writer's pid (so a
    later run can clear a dead writer's leftovers) and a rename (a failed write raises
    :class:`~photossl.files.WriteError` and leaves the old file)."""
    _write_json(path, content, indent=1, sort_keys=True, temporary=_tmp_path(Path(path)))


def write_chunk(dataset, path: str | Path, encoding: dict | None = None) -> str:
    """Write an xarray Dataset to NetCDF4 (h5netcdf) atomically; return the file's sha256.

    The bytes depend only on the data, attributes and library versions (no timestamps), so two writes of one chunk
    give the same file. A failed write raises :class:`~photossl.files.WriteError` and leaves no temporary file.
    """
    path = Path(path)
    digest = []

    def write(tmp: str) -> None:
        dataset.to_netcdf(tmp, engine="h5netcdf", encoding=encoding or {})
        digest.append(file_sha256(tmp))

    replace_atomically(path, write, temporary=_tmp_path(path))
    return digest[-1]


def remove_dead_tmp_files(directory: Path) -> list[Path]:
    """Delete ``.*.tmp-<pid>`` leftovers of writers that no longer run on this host; return what was removed."""
    removed = []
    for tmp in directory.glob(".*.tmp-*"):
        pid_text = tmp.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


# ---------------------------------------------------------------------------------------------------------- lock


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host; a zombie (dead, not yet reaped) counts as dead."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


class _LiveWriter(Exception):
    """The lock is held by a writer that may still be running: ``who`` says which."""

    def __init__(self, who: str):
        super().__init__(who)
        self.who = who


class WriterLock:
    """An exclusive lock file (created with O_CREAT | O_EXCL) holding the writer's pid and host.

    A lock left by a dead process on this host is taken over (``on_warning`` is told); a lock held by a live process
    or by another host is refused with a PhotosslError that names the file to delete if no writer is running, or,
    with ``wait``, waited for (``on_warning`` is told once), checking every ``poll`` seconds.
    """

    def __init__(self, path: str | Path, on_warning=None, wait: bool = False, poll: float = 2.0):
        self.path = Path(path)
        self.on_warning = on_warning or (lambda message: print(f"Warning: {message}", file=sys.stderr))
        self.wait, self.poll = wait, poll
        self._held = False

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as err:
            raise write_error(self.path, err) from err
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"pid": os.getpid(), "host": socket.gethostname()}, handle)
        except OSError as err:  # an empty lock would block every later run: remove it
            self.path.unlink(missing_ok=True)
            raise write_error(self.path, err) from err
        return True

    def acquire(self) -> WriterLock:
        told = False
        while True:
            try:
                return self._acquire_once()
            except _LiveWriter as writer:
                busy = f"another photossl generate ({writer.who}) is writing to {self.path.parent}"
                if not self.wait:
                    raise PhotosslError(f"{busy}; if it is no longer running, delete {self.path} and rerun") from None
                if not told:
                    self.on_warning(f"{busy}; waiting for it to finish (if it is no longer running, delete "
                                    f"{self.path})")
                    told = True
                time.sleep(self.poll)

    def _acquire_once(self) -> WriterLock:
        for _ in range(3):
            if self._create():
                self._held = True
                return self
            try:
                text = self.path.read_text()
                holder = json.loads(text)
                pid, host = int(holder["pid"]), str(holder["host"])
            except FileNotFoundError:
                continue  # released between our attempts
            except (OSError, ValueError, KeyError, TypeError):
                raise PhotosslError(
                    f"{self.path} exists but is unreadable; if no photossl generate is writing to "
                    f"{self.path.parent}, delete it and rerun"
                ) from None
            if host == socket.gethostname() and not _pid_alive(pid):
                # Remove only the stale lock we read, not one a concurrent taker just created.
                try:
                    if self.path.read_text() == text:
                        self.path.unlink()
                except FileNotFoundError:
                    pass
                self.on_warning(f"took over the stale lock {self.path} of process {pid}, which is no longer running")
                continue
            where = "this host" if host == socket.gethostname() else f"host {host}"
            raise _LiveWriter(f"pid {pid} on {where}")
        raise PhotosslError(f"could not take the lock {self.path}; another writer keeps replacing it")

    def release(self) -> None:
        if self._held:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self._held = False

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ----------------------------------------------------------------------------------------------------- manifests


def _plain(value):
    """JSON round trip, so configs compare the way they are stored (tuples become lists)."""
    return json.loads(json.dumps(value, sort_keys=True))


def config_differences(ours: dict, theirs: dict) -> list[str]:
    """Keys whose values differ between two configs, each as ``key (ours vs theirs)``, sorted by key."""
    ours, theirs = _plain(ours), _plain(theirs)
    out = []
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key, "<absent>") != theirs.get(key, "<absent>"):
            out.append(f"{key} ({json.dumps(ours.get(key))} vs {json.dumps(theirs.get(key))})")
    return out


def read_manifests(directory: str | Path) -> dict[str, dict]:
    """All manifests of a dataset directory, by file name. Malformed ones raise PhotosslError naming the file."""
    directory = Path(directory)
    found = {}
    for path in sorted(directory.glob("manifest*.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise PhotosslError(f"cannot read manifest {path}: {err}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise PhotosslError(f"{path} is not a photossl dataset manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise PhotosslError(
                f"{path} has format version {manifest.get('format_version')}; this photossl reads {FORMAT_VERSION}"
            )
        for key in ("config", "chunks", "n_cells"):
            if key not in manifest:
                raise PhotosslError(f"manifest {path} lacks '{key}'")
        check_chunk_entries(manifest, path)
        found[path.name] = manifest
    return found


def chunk_files(directory: str | Path) -> list[Path]:
    """The chunk files that the manifests of dataset ``directory`` list, in cell order (each file once).

    The API for code that reads chunks one by one: the manifests say which files belong to the dataset (a stray or
    half-written file in ``chunks/`` is not one of them). Raises PhotosslError for a folder without manifests.
    """
    directory = Path(directory)
    manifests = read_manifests(directory)
    if not manifests:
        what = "does not exist" if not directory.exists() else "has no manifest.json"
        raise PhotosslError(f"{directory} {what}: not a photossl dataset (make one with photossl generate)")
    starts = {name: int(entry["start"])
              for manifest in manifests.values() for name, entry in manifest["chunks"].items()}
    return [directory / CHUNK_DIR / name for name in sorted(starts, key=starts.get)]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_chunk_entries(manifest: dict, path: Path) -> None:
    """Refuse (PhotosslError naming ``path``, the manifest file) chunk entries that no photossl writer makes: a name
    other than ``chunk_name(start)`` (so no folder separators or ``..``), a cell range outside ``0..n_cells`` or
    overlapping another, a malformed sha256, or a chunk file that resolves outside the dataset's chunk folder.

    A manifest names the files that are read next; checking it first means a hostile one reads nothing outside the
    dataset. The chunk folder itself may be a link (a study's view of a dataset); a chunk file may not leave it.
    """

    def refuse(problem: str) -> PhotosslError:
        return PhotosslError(f"manifest {path} {problem}; it was not written by photossl generate (regenerate the "
                             "dataset, or restore the manifest)")

    n_cells, chunks, config = manifest["n_cells"], manifest["chunks"], manifest["config"]
    if not _is_int(n_cells) or n_cells < 0:
        raise refuse(f"has n_cells {str(n_cells)[:40]!r}, not a count")
    if not isinstance(config, dict) or config.get("n_cells", n_cells) != n_cells:
        raise refuse(f"has n_cells {n_cells}, which disagrees with its config")
    if not isinstance(chunks, dict):
        raise refuse("lists its chunks in something other than a mapping")
    folder = (path.parent / CHUNK_DIR).resolve()
    ranges = []
    for name, entry in chunks.items():
        shown = repr(name)[:80]
        if not isinstance(entry, dict) or not _is_int(entry.get("start")) or not _is_int(entry.get("stop")):
            raise refuse(f"has chunk {shown} without integer start and stop")
        start, stop = entry["start"], entry["stop"]
        if name != chunk_name(start):
            raise refuse(f"names chunk {shown} for cells from {start}; expected {chunk_name(start)!r}")
        if not 0 <= start < stop <= n_cells:
            raise refuse(f"gives chunk {shown} cells {start}..{stop - 1}, outside 0..{n_cells - 1}")
        sha = entry.get("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise refuse(f"gives chunk {shown} no sha256")
        if not (folder / name).resolve().is_relative_to(folder):
            raise refuse(f"points chunk {shown} outside {folder}")
        ranges.append((start, stop, name))
    ranges.sort()
    for (_, stop, first), (start, next_stop, second) in zip(ranges, ranges[1:]):
        if start < stop:
            raise refuse(f"gives chunks {first!r} and {second!r} overlapping cells {start}..{min(stop, next_stop) - 1}")


# -------------------------------------------------------------------------------------------------------- reading


def _collect_chunks(directories: list[Path]) -> tuple[dict, list[tuple[int, int, Path, set[str]]]]:
    """The common config and every chunk (start, stop, path, accepted sha256s) over all manifests of ``directories``."""
    config, config_source = None, None
    by_range: dict[tuple[int, int], tuple[Path, set[str]]] = {}
    for directory in directories:
        manifests = read_manifests(directory)
        if not manifests:
            what = "does not exist" if not directory.exists() else "has no manifest.json"
            raise PhotosslError(f"{directory} {what}: not a photossl dataset (make one with photossl generate)")
        for name, manifest in manifests.items():
            if config is None:
                config, config_source = manifest["config"], directory / name
            else:
                differing = config_differences(manifest["config"], config)
                if differing:
                    raise PhotosslError(
                        f"{directory / name} and {config_source} describe different datasets "
                        f"(config differs in {', '.join(differing)})"
                    )
            for file_name, entry in manifest["chunks"].items():
                key = (int(entry["start"]), int(entry["stop"]))
                path = directory / CHUNK_DIR / file_name
                if key in by_range and by_range[key][0] != path:
                    continue  # the same cells from another directory: one copy is enough
                by_range.setdefault(key, (path, set()))[1].add(entry["sha256"])
    chunks = sorted((start, stop, path, shas) for (start, stop), (path, shas) in by_range.items())
    for (_, stop, first, _), (start, next_stop, second, _) in zip(chunks, chunks[1:]):
        if start < stop:  # each manifest is consistent, but two of them disagree on the cells of a chunk
            raise PhotosslError(f"chunks {first} and {second} both hold cells {start}..{min(stop, next_stop) - 1}; "
                                "the dataset's manifests disagree (regenerate the dataset)")
    return config, chunks


def open_dataset(
    path: str | Path | list[str | Path] | tuple[str | Path, ...],
    verify: bool = True,
    variables: list[str] | tuple[str, ...] | None = None,
    allow_incomplete: bool = False,
):
    """A photossl dataset as one in-memory ``xarray.Dataset``, cells in order along the ``cell`` dimension.

    Args:
        path: a dataset directory, or several (e.g. one per shard); their manifests are merged.
        verify: check every chunk file's sha256 against its manifest first; a corrupt, truncated or missing chunk
            raises PhotosslError naming the file.
        variables: load only these data variables (coordinates always come along); default all.
        allow_incomplete: return the cells present when chunks are missing (an unfinished run) instead of raising.

    Returns:
        Dataset with ``eps (cell, x, y)``, the labels (e.g. ``dos (cell, freq)``), coordinates ``cell``, ``freq``,
        ... and the dataset-level attributes of the chunks (config, seed, solver, ...).
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise PhotosslError("open_dataset needs at least one dataset directory")
    config, chunks = _collect_chunks([Path(p) for p in paths])
    n_cells = int(config["n_cells"])
    covered, missing = 0, []
    for start, stop, _, _ in chunks:
        if start > covered:
            missing.append((covered, start))
        covered = max(covered, stop)
    if covered < n_cells:
        missing.append((covered, n_cells))
    if missing and not allow_incomplete:
        n_missing = sum(b - a for a, b in missing)
        first = missing[0]
        raise PhotosslError(
            f"dataset {', '.join(map(str, paths))} is incomplete: {n_missing} of {n_cells} cells missing "
            f"(first gap: cells {first[0]}..{first[1] - 1}); finish it by rerunning photossl generate "
            "(every shard), or pass allow_incomplete=True"
        )
    if not chunks:
        raise PhotosslError(f"dataset {', '.join(map(str, paths))} has no chunks yet")

    template = None
    columns: dict[str, list[np.ndarray]] = {}
    for start, stop, chunk_path, shas in chunks:
        if not chunk_path.exists():
            raise PhotosslError(f"chunk {chunk_path} is listed in the manifest but missing; rerun photossl generate")
        if verify and file_sha256(chunk_path) not in shas:
            raise PhotosslError(
                f"chunk {chunk_path} is corrupt or truncated (sha256 differs from the manifest); delete it and "
                "rerun photossl generate with the same options to regenerate it"
            )
        if template is None:
            template = _read_chunk_xarray(chunk_path, variables)
            columns = {name: [] for name, v in template.variables.items() if "cell" in v.dims}
        parts = _read_cell_arrays(chunk_path, template, stop - start)
        for name, values in parts.items():
            columns[name].append(values)
    return _assemble(template, columns)


def _read_chunk_xarray(path: Path, variables):
    """One chunk through xarray (decoded), optionally restricted to ``variables``."""
    import xarray as xr

    try:
        with xr.open_dataset(path, engine="h5netcdf") as handle:
            part = handle if variables is None else handle[list(variables)]
            return part.load()
    except KeyError as err:
        raise PhotosslError(f"chunk {path} has no variable {err}") from None
    except (OSError, ValueError) as err:
        raise PhotosslError(f"cannot read chunk {path}: {err}") from None


# CF attributes that would make raw HDF5 values differ from what xarray decodes.
_ENCODING_ATTRS = ("scale_factor", "add_offset", "_Unsigned", "calendar")


def _read_cell_arrays(path: Path, template, n_cells: int) -> dict[str, np.ndarray]:
    """The per-cell arrays of a chunk with the template's layout, read with h5py (xarray costs ~25x more per file).

    Variables are written without CF encodings, so the raw HDF5 values are what xarray would decode; anything else
    (an encoding attribute, another dtype or shape) falls back to xarray.
    """
    import h5py

    names = [name for name, v in template.variables.items() if "cell" in v.dims]
    out = {}
    try:
        with h5py.File(path, "r") as handle:
            for name in names:
                if name not in handle:
                    raise PhotosslError(f"chunk {path} has no variable '{name}'")
                node = handle[name]
                expected = template.variables[name]
                cell_axis = expected.dims.index("cell")
                shape = expected.shape[:cell_axis] + (n_cells,) + expected.shape[cell_axis + 1 :]
                if node.dtype != expected.dtype or node.shape != shape or any(a in node.attrs for a in _ENCODING_ATTRS):
                    break
                out[name] = node[()]
            else:
                return out
    except OSError as err:
        raise PhotosslError(f"cannot read chunk {path}: {err}") from None
    decoded = _read_chunk_xarray(path, names)
    if decoded.sizes.get("cell") != n_cells:
        raise PhotosslError(f"chunk {path} holds {decoded.sizes.get('cell')} cells, expected {n_cells}")
    return {name: decoded.variables[name].values for name in names}


def _assemble(template, columns: dict[str, list[np.ndarray]]):
    """One Dataset: the template's structure with each per-cell variable concatenated along ``cell``."""
    import xarray as xr

    variables = {}
    for name, variable in template.variables.items():
        if name in columns:
            data = np.concatenate(columns[name], axis=variable.dims.index("cell"))
            variables[name] = xr.Variable(variable.dims, data, variable.attrs)
        else:
            variables[name] = variable
    coord_names = set(template.coords)
    attrs = {k: v for k, v in template.attrs.items() if k not in CHUNK_ATTRS}
    data_vars = {k: v for k, v in variables.items() if k not in coord_names}
    coords = {k: v for k, v in variables.items() if k in coord_names}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def bundled_dataset_path(name: str = "sibcl-p1-tm-512") -> Path:
    """Directory of a small dataset shipped with photossl (``data/<name>`` in the repository, see
    ``data/README.md``; package data ``photossl/_data/<name>`` in a wheel), found with :mod:`importlib.resources`."""
    from importlib.resources import files

    candidates = [Path(str(files("photossl") / "_data" / name)),
                  Path(__file__).resolve().parents[2] / "data" / name]  # a checkout whose link is missing
    for path in candidates:
        if (path / "manifest.json").exists():
            return path
    raise PhotosslError(
        f"bundled dataset {name!r} not found at {candidates[0]} (this installation lacks photossl's package data; "
        "reinstall photossl, or make a dataset with photossl generate, see data/README.md)"
    )
