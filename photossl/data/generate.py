"""Generate a labelled photonic-crystal dataset: presets, per-cell generation and labelling, workers, shards, resume.

Cell ``i`` is made from the seed ``SeedSequence([seed, i])`` alone, and chunk ``c`` holds cells
``[c * chunk_size, (c + 1) * chunk_size)``, so the stored files do not depend on the worker count, the sharding or
interruptions. Labels are computed from the stored float32 permittivity (cast to float64), so anyone can recompute
them from the file. Each manifest entry also records ``label_cpu_s``, the CPU seconds the chunk's labels took (what
the labels cost, for comparing label recipes). The chunks are written by local processes or, given a scheduler
address, by the workers of a Dask cluster (:mod:`photossl.cluster`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photossl.config import build_config, config_to_dict
from photossl.data.storage import (
    CHUNK_DIR,
    FORMAT,
    FORMAT_VERSION,
    WriterLock,
    chunk_name,
    config_differences,
    file_sha256,
    lock_name,
    manifest_name,
    read_manifests,
    remove_dead_tmp_files,
    write_chunk,
    write_json_atomic,
)
from photossl.errors import PhotosslError
from photossl.physics.labels import DEFAULT_SOLVER_OPTIONS

__all__ = [
    "GenerateConfig",
    "GenerateResult",
    "PRESETS",
    "cell_seed",
    "generate_chunk",
    "generate_dataset",
    "preset_config",
]

TARGETS = ("dos", "bands", "gaps", "group_velocity")
POLARIZATIONS = ("tm", "te")
SOLVERS = ("pwe", "mpb")
CELL_KINDS = ("levelset", "cylinder")
GAP_FIELDS = ("lower_edge", "upper_edge", "gap_to_midgap")

# Accuracy settings of each solver; user options are merged over these and the result is stored in the config.
PWE_DEFAULT_OPTIONS = dict(DEFAULT_SOLVER_OPTIONS)
PWE_OPTION_KEYS = (
    "cutoff", "basis_shape", "te_rule", "anchor_spacing", "anchor_extra_bands", "anchor_response_bands",
    "reduced_precision", "k_chunk", "k_grid",
)
# resolution None means one MPB grid point per pixel (pixel-exact ε).
MPB_DEFAULT_OPTIONS = {"resolution": None, "tolerance": 1e-7, "extra_bands": 2}
MPB_OPTION_KEYS = ("resolution", "tolerance", "extra_bands", "block_size", "randomize_fields", "timeout")

UNITS = (
    "lattice constant a = 1; frequencies omega a / (2 pi c); k in fractions of the reciprocal lattice vectors "
    "(2 pi / a); group velocities in units of c; DOS per unit frequency per Brillouin zone, on the scaled frequency "
    "freq = omega sqrt(eps_mean) a / (2 pi c); eps is relative permittivity"
)
CELL_SEED_RULE = "int(np.random.SeedSequence([seed, cell]).generate_state(1, np.uint64)[0] >> 1)"


@dataclass
class GenerateConfig:
    """Everything that determines a dataset's content (run options such as workers and shards are not here).

    ``group``, ``max_order`` and ``filling_range`` apply to level-set cells, ``radius_range`` to cylinder cells.
    ``solver_options`` are merged over the solver's defaults, so the stored config lists every accuracy setting.
    """

    preset: str = "sibcl-p1"
    n_cells: int = 1024
    seed: int = 0
    chunk_size: int = 64
    cell: str = field(default="levelset", metadata={"choices": CELL_KINDS})
    group: str = "p1"
    size: int = 32
    max_order: int = 1
    filling_range: tuple[float, float] = (0.01, 0.99)
    eps_in_range: tuple[float, float] = (1.0, 20.0)
    eps_out_range: tuple[float, float] = (1.0, 20.0)
    radius_range: tuple[float, float] = (0.0, 0.5)
    polarizations: tuple[str, ...] = field(default=("tm",), metadata={"choices": POLARIZATIONS})
    grid_size: int = 25
    n_bands: int = 10
    targets: tuple[str, ...] = field(default=("dos", "bands", "gaps"), metadata={"choices": TARGETS})
    use_symmetry: bool = True
    solver: str = field(default="pwe", metadata={"choices": SOLVERS})
    solver_options: dict | None = None

    def __post_init__(self) -> None:
        defaults, allowed = (
            (PWE_DEFAULT_OPTIONS, PWE_OPTION_KEYS) if self.solver == "pwe" else (MPB_DEFAULT_OPTIONS, MPB_OPTION_KEYS)
        )
        given = dict(self.solver_options or {})
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise PhotosslError(
                f"unknown {self.solver} solver option '{unknown[0]}' (allowed: {', '.join(allowed)})"
            )
        for key, value in given.items():  # 3 and 3.0 must store the same config (and the same chunk bytes)
            if isinstance(defaults.get(key), float) and isinstance(value, int) and not isinstance(value, bool):
                given[key] = float(value)
        self.solver_options = {**defaults, **given}
        self.polarizations = tuple(self.polarizations)
        self.targets = tuple(self.targets)
        self.filling_range = tuple(self.filling_range)
        self.eps_in_range = tuple(self.eps_in_range)
        self.eps_out_range = tuple(self.eps_out_range)
        self.radius_range = tuple(self.radius_range)

    def validate(self) -> None:
        from photossl.physics.cells import validate_eps_range
        from photossl.physics.plane_groups import plane_group

        for name in ("n_cells", "chunk_size", "size", "max_order", "grid_size", "n_bands"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PhotosslError(f"{name} must be a positive integer, got {value!r}")
        if self.size < 2:
            raise PhotosslError(f"size (pixels per side) must be >= 2, got {self.size}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise PhotosslError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("filling_range", "eps_in_range", "eps_out_range", "radius_range"):
            if len(getattr(self, name)) != 2:
                raise PhotosslError(f"{name} must be two numbers (low, high), got {getattr(self, name)!r}")
        low, high = self.filling_range
        if not 0 <= low <= high <= 1:
            raise PhotosslError(f"filling_range must satisfy 0 <= low <= high <= 1, got {self.filling_range}")
        low, high = self.radius_range
        if not 0 <= low <= high <= 0.5:
            raise PhotosslError(f"radius_range must satisfy 0 <= low <= high <= 0.5, got {self.radius_range}")
        validate_eps_range("eps_in_range", self.eps_in_range)
        validate_eps_range("eps_out_range", self.eps_out_range)
        plane_group(self.group)
        if len(set(self.polarizations)) != len(self.polarizations):
            raise PhotosslError(f"polarizations repeat: {list(self.polarizations)}")
        if self.targets and not self.polarizations:
            raise PhotosslError("labels need at least one polarization")
        if len(set(self.targets)) != len(self.targets):
            raise PhotosslError(f"targets repeat: {list(self.targets)}")
        if self.preset not in PRESETS:
            raise PhotosslError(f"unknown preset '{self.preset}' (choose from {', '.join(PRESETS)})")
        from photossl.physics.labels import K_GRIDS

        if self.solver_options.get("k_grid", "sibcl") not in K_GRIDS:
            raise PhotosslError(f"solver option k_grid must be one of {', '.join(K_GRIDS)}, "
                                f"got {self.solver_options['k_grid']!r}")

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @property
    def labelled(self) -> bool:
        return bool(self.targets)


# Each preset is a partial config; explicit options override it.
PRESETS: dict[str, dict] = {
    # SIB-CL (Loh et al. 2022): p1 Fourier level sets of order 1, eps in [1, 20], TM, 10 bands, 25 x 25 k-grid.
    "sibcl-p1": {"cell": "levelset", "group": "p1"},
    # E-SSL's "gpm" set: the same recipe with one mirror line (plane group pm).
    "essl-pm": {"cell": "levelset", "group": "pm"},
    # Fully symmetric cells (plane group p4m: 4-fold rotations and mirrors).
    "p4m": {"cell": "levelset", "group": "p4m"},
    # SIB-CL's surrogate set: one centred cylinder, radius in (0, 0.5].
    "cylinder-surrogate": {"cell": "cylinder", "radius_range": (0.0, 0.5)},
}


def preset_config(preset: str = "sibcl-p1", **overrides) -> GenerateConfig:
    """The config of ``preset`` with ``overrides`` (config keys) applied; unknown keys raise PhotosslError."""
    if preset not in PRESETS:
        raise PhotosslError(f"unknown preset '{preset}' (choose from {', '.join(PRESETS)})")
    values = {**PRESETS[preset], **overrides, "preset": preset}
    return build_config(GenerateConfig, values)


def cell_seed(seed: int, index: int) -> int:
    """The generator seed of cell ``index``: a function of (seed, index) only; 63 bits, so 10^7 cells don't collide."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


# ---------------------------------------------------------------------------------------------- one cell, one chunk


def _make_cell(config: GenerateConfig, index: int) -> dict:
    """Permittivity (float32) and generator parameters of cell ``index``."""
    from photossl.physics.cells import fourier_level_set_cell, surrogate_cylinder_cell

    seed = cell_seed(config.seed, index)
    if config.cell == "levelset":
        cell = fourier_level_set_cell(
            seed, n=config.size, max_order=config.max_order, group=config.group,
            filling_range=config.filling_range, eps_in_range=config.eps_in_range, eps_out_range=config.eps_out_range,
        )
        eps64, eps_in, eps_out, filling = cell.eps, cell.eps_in, cell.eps_out, cell.filling
        params = {"level": cell.level, "coef_real": cell.coefficients.real, "coef_imag": cell.coefficients.imag}
    else:
        eps64, info = surrogate_cylinder_cell(
            seed, n=config.size, radius_range=config.radius_range,
            eps_in_range=config.eps_in_range, eps_out_range=config.eps_out_range,
        )
        eps_in, eps_out = info["eps_in"], info["eps_out"]
        # filling is the eps_out fraction, as for level sets: 1 - (disk area) in a unit cell
        filling = 1.0 - np.pi * info["radius"] ** 2
        params = {"radius": info["radius"]}
    eps = eps64.astype(np.float32)
    return {
        "eps": eps,
        "cell_seed": seed,
        "eps_in": eps_in,
        "eps_out": eps_out,
        "filling": filling,
        "fill_fraction": float(np.mean(eps64 == eps_out)),
        "eps_mean": float(eps.astype(np.float64).mean()),
        **params,
    }


def _label(config: GenerateConfig, eps: np.ndarray, polarization: str):
    """CellLabels of one float64 map with the configured solver."""
    need_velocities = "dos" in config.targets or "group_velocity" in config.targets
    if config.solver == "pwe":
        from photossl.physics.labels import label_cell

        return label_cell(
            eps, polarization, config.n_bands, config.grid_size, dos=need_velocities,
            use_symmetry=config.use_symmetry, solver_options=config.solver_options,
        )
    return _label_mpb(config, eps, polarization, need_velocities)


def _label_mpb(config: GenerateConfig, eps: np.ndarray, polarization: str, need_velocities: bool):
    """The recipe of ``label_cell`` with MPB as the eigensolver (velocities from MPB, DOS by GGR)."""
    from photossl.physics.dos import sibcl_dos
    from photossl.physics.gaps import gap_table
    from photossl.physics.kpoints import cell_point_group, reduce_kpoints, sibcl_grid
    from photossl.physics.labels import CellLabels, _expand_velocities
    from photossl.physics.mpb import run_mpb

    kpoints = sibcl_grid(config.grid_size)
    rotations = cell_point_group(eps) if config.use_symmetry else (np.eye(2, dtype=np.int64),)
    irreducible = reduce_kpoints(kpoints, rotations, time_reversal=config.use_symmetry)
    options = {k: v for k, v in config.solver_options.items() if v is not None}
    result = run_mpb(
        eps, kpoints[irreducible.indices], polarization, config.n_bands, group_velocities=need_velocities, **options
    )
    freqs, velocities = result if need_velocities else (result, None)
    dos = velocities_full = None
    if need_velocities:
        dos = sibcl_dos(freqs, velocities, float(np.mean(eps)), 1.0 / config.grid_size, irreducible.weights)
        velocities_full = _expand_velocities(kpoints, irreducible, velocities, rotations)
    return CellLabels(
        polarization, freqs[irreducible.inverse], velocities_full, dos, gap_table(freqs), len(irreducible.indices)
    )


def generate_chunk(config: GenerateConfig, start: int, stop: int, timing: dict | None = None):
    """Cells [start, stop) with their labels as an xarray Dataset in the photossl chunk layout.

    ``timing``: a dict that receives ``label_cpu_s``, the CPU seconds the labels took (the solver's cost).
    """
    with _one_torch_thread():  # the eigenproblems are small: more threads only contend
        return _generate_chunk(config, start, stop, timing)


def _generate_chunk(config: GenerateConfig, start: int, stop: int, timing: dict | None = None):
    import xarray as xr

    from photossl import __version__
    from photossl.physics.kpoints import sibcl_grid

    indices = np.arange(start, stop, dtype=np.int64)
    cells = [_make_cell(config, int(i)) for i in indices]
    stack = {key: np.stack([np.asarray(c[key]) for c in cells]) for key in cells[0]}
    data = {
        "eps": (("cell", "x", "y"), stack["eps"], {"long_name": "relative permittivity (labels use these values)"}),
        "cell_seed": (("cell",), stack["cell_seed"].astype(np.int64), {"rule": CELL_SEED_RULE}),
        "eps_in": (("cell",), stack["eps_in"].astype(np.float64), {"long_name": "permittivity of the inside phase"}),
        "eps_out": (("cell",), stack["eps_out"].astype(np.float64), {"long_name": "permittivity of the outside phase"}),
        "filling": (("cell",), stack["filling"].astype(np.float64),
                    {"long_name": "requested fraction of the cell holding eps_out"}),
        "fill_fraction": (("cell",), stack["fill_fraction"], {"long_name": "fraction of pixels holding eps_out"}),
        "eps_mean": (("cell",), stack["eps_mean"], {"long_name": "mean of the stored eps"}),
    }
    coords = {"cell": ("cell", indices)}
    if config.cell == "levelset":
        data["level"] = (("cell",), stack["level"].astype(np.float64), {"long_name": "level of the Fourier sum"})
        fourier = {"long_name": "Fourier coefficient c_G of the level-set function, G = (gx, gy)"}
        data["coef_real"] = (("cell", "gx", "gy"), stack["coef_real"], fourier)
        data["coef_imag"] = (("cell", "gx", "gy"), stack["coef_imag"], fourier)
        orders = np.arange(-config.max_order, config.max_order + 1, dtype=np.int64)
        coords.update(gx=("gx", orders), gy=("gy", orders))
    else:
        data["radius"] = (("cell",), stack["radius"].astype(np.float64), {"long_name": "cylinder radius", "units": "a"})

    freq = None
    eps_labels = stack["eps"].astype(np.float64)
    label_cpu_s = 0.0
    for pol in config.polarizations if config.labelled else ():
        tick = time.process_time()
        labels = [_label(config, eps, pol) for eps in eps_labels]
        label_cpu_s += time.process_time() - tick
        if "bands" in config.targets:
            data[f"bands_{pol}"] = (
                ("cell", "k", "band"), np.stack([lab.frequencies for lab in labels]).astype(np.float32),
                {"long_name": f"{pol.upper()} band frequencies", "units": "omega a / (2 pi c)"},
            )
        if "group_velocity" in config.targets:
            data[f"group_velocity_{pol}"] = (
                ("cell", "k", "band", "component"),
                np.stack([lab.group_velocities for lab in labels]).astype(np.float32),
                {"long_name": f"{pol.upper()} group velocity d omega / dk", "units": "c"},
            )
        if "gaps" in config.targets:
            data[f"gaps_{pol}"] = (
                ("cell", "band_pair", "gap_field"), np.stack([lab.gaps for lab in labels]).astype(np.float32),
                {"long_name": f"{pol.upper()} gap between bands n and n+1 (edges; gap-to-midgap ratio, 0 if none)"},
            )
        if "dos" in config.targets:
            freq = labels[0].dos.freq
            data[f"dos_{pol}"] = (
                ("cell", "freq"), np.stack([lab.dos.dos_normalized for lab in labels]).astype(np.float32),
                {"long_name": f"{pol.upper()} DOS / sqrt(eps_mean) (SIB-CL DOSn)"},
            )
            data[f"dos_eldiff_{pol}"] = (
                ("cell", "freq"), np.stack([lab.dos.eldiff for lab in labels]).astype(np.float32),
                {"long_name": f"{pol.upper()} DOS / sqrt(eps_mean) - 2 pi freq (SIB-CL DOSeldiffn, the target)"},
            )
    if config.labelled and "dos" in config.targets:
        first = config.polarizations[0]
        data["dos"] = (data[f"dos_{first}"][0], data[f"dos_{first}"][1], {**data[f"dos_{first}"][2]})
        data["dos_eldiff"] = (
            data[f"dos_eldiff_{first}"][0], data[f"dos_eldiff_{first}"][1], {**data[f"dos_eldiff_{first}"][2]}
        )
        coords["freq"] = ("freq", np.asarray(freq, dtype=np.float64),
                          {"long_name": "scaled frequency omega sqrt(eps_mean) a / (2 pi c)"})
    if config.labelled and {"bands", "group_velocity"} & set(config.targets):
        kpoints = sibcl_grid(config.grid_size)
        if config.solver == "pwe":
            from photossl.physics.labels import label_kpoints

            kpoints = label_kpoints(config.grid_size, config.solver_options.get("k_grid", "sibcl"))
        coords.update(k_x=("k", kpoints[:, 0], {"units": "2 pi / a"}), k_y=("k", kpoints[:, 1], {"units": "2 pi / a"}))
    if config.labelled and "gaps" in config.targets:
        coords["gap_field"] = ("gap_field", np.array(GAP_FIELDS))
    if "group_velocity" in config.targets:
        coords["component"] = ("component", np.array(["x", "y"]))

    dataset = xr.Dataset(data, coords=coords)
    from photossl.data.storage import dataset_sha256

    config_dict = config.to_dict()
    dataset.attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "photossl_version": __version__,
        "preset": config.preset,
        "config": json.dumps(config_dict, sort_keys=True),
        "seed": config.seed,
        "solver": config.solver,
        "solver_options": json.dumps(config.solver_options, sort_keys=True),
        "dos_method": "ggr" if "dos" in config.targets else "none",
        "units": UNITS,
        "chunk_start": int(start),
        "chunk_stop": int(stop),
    }
    dataset.attrs["data_sha256"] = dataset_sha256(dataset)
    if timing is not None:
        timing["label_cpu_s"] = label_cpu_s
    return dataset


def _encoding(dataset) -> dict:
    """gzip + shuffle (deterministic bytes), one HDF5 chunk per cell: a cell's bands hold its k <-> -k repeats."""
    return {
        name: {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": (1, *variable.shape[1:])}
        for name, variable in dataset.data_vars.items()
        if variable.ndim >= 2 and variable.dims[0] == "cell"
    }


def _write_chunk_task(task: tuple[GenerateConfig, int, int, str]) -> tuple[str, int, int, str, float]:
    """Generate and write one chunk; runs in a worker. Returns (file name, start, stop, sha256, label CPU seconds)."""
    config, start, stop, directory = task
    timing: dict = {}
    dataset = generate_chunk(config, start, stop, timing)
    name = chunk_name(start)
    sha = write_chunk(dataset, Path(directory) / name, _encoding(dataset))
    return name, start, stop, sha, timing["label_cpu_s"]


# ------------------------------------------------------------------------------------------------------- the run


@dataclass
class GenerateResult:
    """What a ``generate_dataset`` call did."""

    out: Path
    manifest: Path
    cells_total: int  # cells this writer is responsible for (its shard)
    cells_written: int  # generated in this call
    cells_reused: int  # already present and verified
    seconds: float
    complete: bool  # this writer's share is complete

    @property
    def cells_per_second(self) -> float:
        return self.cells_written / self.seconds if self.seconds > 0 else float("nan")


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _init_worker(parent_pid: int | None = None) -> None:
    # Die with the parent: a killed generate must not leave workers writing into the directory.
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    # The parent may have died while this worker was starting, before the death signal was armed.
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
    import torch

    torch.set_num_threads(1)


@contextmanager
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _parse_shard(shard) -> tuple[int, int] | None:
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            index, count = (int(part) for part in shard.split("/"))
        except ValueError:
            raise PhotosslError(f"shard must look like I/N (e.g. 0/4), got '{shard}'") from None
    else:
        index, count = shard
    if not 0 <= index < count:
        raise PhotosslError(f"shard I/N needs 0 <= I < N, got {index}/{count}")
    return None if count == 1 else (int(index), int(count))


def _check_existing(out: Path, config: GenerateConfig) -> dict[str, dict]:
    """Chunks already recorded by any manifest in ``out`` that also belong to this run; refuse another config."""
    ours = config.to_dict()
    recorded: dict[str, dict] = {}
    for name, manifest in read_manifests(out).items():
        differing = config_differences(ours, manifest["config"])
        if differing:
            raise PhotosslError(
                f"{out} holds a dataset made with another config ({name} differs in {'; '.join(differing)}); "
                "use a new --out directory or rerun with the original options"
            )
        for file_name, entry in manifest["chunks"].items():
            recorded.setdefault(file_name, entry)
    return recorded


def generate_dataset(
    config: GenerateConfig,
    out: str | Path,
    workers: int | None = None,
    shard: str | tuple[int, int] | None = None,
    progress: bool = True,
    log=None,
    scheduler: str | None = None,
) -> GenerateResult:
    """Generate (or resume) the dataset ``config`` in directory ``out``.

    Args:
        config: what to generate; it is stored in the manifest and every chunk.
        out: dataset directory (created). Rerunning into it resumes; another config there is refused.
        workers: processes (default: all cores). 1 runs in this process; more start that many spawned processes
            (one chunk per task, one torch thread each), so a calling script needs ``if __name__ == "__main__":``.
        shard: ``"I/N"`` or (I, N): write only chunks with chunk_index % N == I, recorded in
            ``manifest-shard<I>of<N>.json``, so N independent jobs build one dataset in a shared directory or in N
            directories (open them together).
        progress: show a tqdm bar (cells/s and ETA).
        log: callable taking one message line (default: print to stderr).
        scheduler: a Dask scheduler address (``tcp://HOST:PORT``): the chunks become tasks of its workers instead
            of the local processes (``workers`` is then unused); the workers must see ``out`` under the same path
            (a shared file system). Each chunk is written atomically by its worker; the manifest by this process.

    Returns:
        GenerateResult. Raises PhotosslError for refused runs (another config, a live lock, a corrupt chunk).
    """
    from tqdm import tqdm

    from photossl import __version__

    config.validate()
    shard_tuple = _parse_shard(shard)
    if workers is None:
        workers = _default_workers()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise PhotosslError(f"workers must be a positive integer, got {workers!r}")
    if scheduler is not None:
        from photossl.cluster import check_address

        scheduler = check_address(scheduler)
    if config.labelled and config.solver == "mpb":
        from photossl.physics.mpb import mpb_available

        if not mpb_available():
            raise PhotosslError(
                "--solver mpb needs the 'mpb' executable on PATH (Debian/Ubuntu: apt install mpb); "
                "or use --solver pwe"
            )

    def say(message: str) -> None:
        if log is not None:
            log(message)
        else:
            tqdm.write(message, file=sys.stderr)

    out = Path(out)
    chunks_dir = out / CHUNK_DIR
    try:
        chunks_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PhotosslError(f"cannot create {chunks_dir}: {err.strerror or err}") from None

    t0 = time.perf_counter()
    own_manifest = out / manifest_name(shard_tuple)
    with WriterLock(out / lock_name(shard_tuple), on_warning=lambda m: say(f"Warning: {m}")):
        recorded = _check_existing(out, config)
        remove_dead_tmp_files(chunks_dir)
        index, count = shard_tuple or (0, 1)
        n_chunks = -(-config.n_cells // config.chunk_size)
        mine = [c for c in range(n_chunks) if c % count == index]

        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "photossl_version": __version__,
            "config": config.to_dict(),
            "n_cells": config.n_cells,
            "chunk_size": config.chunk_size,
            "shard": list(shard_tuple) if shard_tuple else None,
            "chunks": {},
            "complete": False,
        }
        todo = []
        reused = 0
        # Verify everything present before writing anything: a corrupt chunk stops the run with the files untouched.
        for c in mine:
            start, stop = c * config.chunk_size, min((c + 1) * config.chunk_size, config.n_cells)
            name = chunk_name(start)
            entry = recorded.get(name)
            path = chunks_dir / name
            if entry is not None and path.exists():
                if file_sha256(path) != entry["sha256"]:
                    raise PhotosslError(
                        f"chunk {path} is corrupt or truncated (sha256 differs from the manifest); delete it and "
                        "rerun the same command to regenerate it"
                    )
                manifest["chunks"][name] = {"start": start, "stop": stop, "sha256": entry["sha256"],
                                            **{k: entry[k] for k in ("label_cpu_s",) if k in entry}}
                reused += stop - start
            else:
                todo.append((config, start, stop, str(chunks_dir)))
        write_json_atomic(own_manifest, manifest)
        total = sum(min((c + 1) * config.chunk_size, config.n_cells) - c * config.chunk_size for c in mine)
        if reused:
            say(f"resuming: {reused} of {total} cells already in {out}")

        written = 0
        bar = tqdm(total=total, initial=reused, unit="cell", disable=not progress or not todo,
                   desc=f"generate {config.preset}", smoothing=0.1, dynamic_ncols=True, file=sys.stderr)
        t_work = time.perf_counter()
        try:
            for name, start, stop, sha, label_cpu_s in _run_tasks(todo, workers, scheduler):
                # label_cpu_s: what the chunk's labels cost (CPU seconds, one torch thread per worker)
                manifest["chunks"][name] = {"start": start, "stop": stop, "sha256": sha,
                                            "label_cpu_s": round(label_cpu_s, 4)}
                write_json_atomic(own_manifest, manifest)
                written += stop - start
                bar.update(stop - start)
        finally:
            bar.close()
        manifest["complete"] = len(manifest["chunks"]) == len(mine)
        write_json_atomic(own_manifest, manifest)
    seconds = time.perf_counter() - (t_work if todo else t0)
    return GenerateResult(out, own_manifest, total, written, reused, seconds, manifest["complete"])


def _run_tasks(tasks: list, workers: int, scheduler: str | None = None):
    """Yield the results of ``_write_chunk_task`` over ``tasks`` as they finish."""
    if not tasks:
        return
    if scheduler is not None:
        yield from _run_on_dask(tasks, scheduler)
        return
    workers = min(workers, len(tasks))
    if workers == 1:
        for task in tasks:
            yield _write_chunk_task(task)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # An executor, not a multiprocessing.Pool: a worker that dies (OOM killer) breaks it instead of hanging the run.
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                   initargs=(os.getpid(),))
    finished = False
    try:
        pending = {executor.submit(_write_chunk_task, task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
        finished = True
    except BrokenProcessPool:
        raise PhotosslError(
            "a worker process died (killed, out of memory, or a calling script without "
            "`if __name__ == '__main__':`); rerun the same command to resume"
        ) from None
    finally:
        if finished:
            executor.shutdown()
        else:
            processes = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()


def _run_on_dask(tasks: list, scheduler: str):
    """Yield the results of ``_write_chunk_task`` over ``tasks``, run as tasks of the Dask scheduler ``scheduler``."""
    from photossl.cluster import as_completed, connect, killed_worker, task_key

    # Workers elsewhere resolve a relative folder against their own working directory: send an absolute one.
    tasks = [(config, start, stop, str(Path(directory).resolve())) for config, start, stop, directory in tasks]
    with connect(scheduler) as client:
        futures = {client.submit(_write_chunk_task, task, key=task_key("generate", chunk_name(task[1]), task[3]),
                                 pure=False): task for task in tasks}
        try:
            for future in as_completed(client, list(futures)):
                try:
                    yield future.result()
                except Exception as err:  # noqa: BLE001 - only a worker that kept dying is rephrased
                    if not killed_worker(err):
                        raise
                    raise PhotosslError(f"Dask workers died writing {chunk_name(futures[future][1])} ({err}); "
                                        "rerun the same command to resume") from None
        finally:
            client.cancel([future for future in futures if not future.done()])
