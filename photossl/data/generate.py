"""Generate a labelled photonic-crystal dataset: presets, per-cell generation and labelling, workers, shards, resume.

Cell ``i`` is made from the seed ``SeedSequence([seed, i])`` alone, and chunk ``c`` holds cells
``[c * chunk_size, (c + 1) * chunk_size)``, so the stored files do not depend on the worker count, the sharding or
interruptions. Labels are computed from the stored float32 permittivity (cast to float64), so anyone can recompute
them from the file. Each manifest entry also records ``label_cpu_s``, the CPU seconds the chunk's labels took (what
the labels cost, for comparing label recipes). The chunks are written by local processes or, given a scheduler
address, by the workers of a Dask cluster (:mod:`photossl.cluster`).

``label_cells`` labels only some cells (the ones a study reads labels of; the others only pretrain): every other
cell is stored with NaN labels, and its manifest entry lists the cells that have them (``labelled``). The first cell
of each chunk is always labelled, which fixes the label shapes. A later run that wants more labels relabels just the
chunks that lack some; the values are those of a fully labelled run, since each label depends on its cell alone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photossl.data.generate_config import (  # noqa: F401 - the recipe, re-exported where it always lived
    CELL_KINDS,
    POLARIZATIONS,
    PRESETS,
    SOLVERS,
    TARGETS,
    GenerateConfig,
    preset_config,
)
from photossl.data.schema import (  # noqa: F401 - GAP_FIELDS, UNITS and CELL_SEED_RULE were defined here once
    CELL_SEED_RULE,
    GAP_FIELDS,
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
from photossl.physics.solver_options import SolverOptions
from photossl.provenance import derive_seed, photossl_version

__all__ = [
    "GenerateConfig",
    "GenerateResult",
    "PRESETS",
    "cell_seed",
    "generate_chunk",
    "generate_dataset",
    "preset_config",
]

def cell_seed(seed: int, index: int) -> int:
    """The generator seed of cell ``index``: a function of (seed, index) only (:data:`CELL_SEED_RULE`)."""
    return derive_seed(seed, index)


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
    from photossl.physics.labels import label_cell_mpb

    return label_cell_mpb(eps, polarization, config.n_bands, config.grid_size, dos=need_velocities,
                          use_symmetry=config.use_symmetry, mpb_options=config.solver_options)


def generate_chunk(config: GenerateConfig, start: int, stop: int, timing: dict | None = None,
                   label_cells=None):
    """Cells [start, stop) with their labels as an xarray Dataset in the photossl chunk layout.

    ``timing``: a dict that receives ``label_cpu_s``, the CPU seconds the labels took (the solver's cost).
    ``label_cells``: the (global) indices of the cells to label, a non-empty subset of [start, stop); the others get
    NaN labels. None labels every cell.
    """
    with _one_torch_thread():  # the eigenproblems are small: more threads only contend
        return _generate_chunk(config, start, stop, timing, label_cells)


def _label_positions(label_cells, start: int, stop: int) -> np.ndarray:
    """Positions in the chunk [start, stop) of the cells to label (all of them for None)."""
    if label_cells is None:
        return np.arange(stop - start, dtype=np.int64)
    positions = np.unique(np.asarray(label_cells, dtype=np.int64)) - start
    if positions.size == 0 or positions[0] < 0 or positions[-1] >= stop - start:
        raise PhotosslError(f"label_cells must be a non-empty subset of the chunk's cells {start}..{stop - 1}")
    return positions


def _spread(rows: np.ndarray, positions: np.ndarray, n_cells: int) -> np.ndarray:
    """``rows`` (one per labelled position) placed at ``positions`` of ``n_cells`` rows; NaN everywhere else."""
    if len(positions) == n_cells:
        return rows
    full = np.full((n_cells, *rows.shape[1:]), np.nan, dtype=np.result_type(rows.dtype, np.float32))
    full[positions] = rows
    return full


def _generate_chunk(config: GenerateConfig, start: int, stop: int, timing: dict | None = None, label_cells=None):
    import xarray as xr

    indices = np.arange(start, stop, dtype=np.int64)
    positions = _label_positions(label_cells, start, stop)
    cells = [_make_cell(config, int(i)) for i in indices]
    stack = {key: np.stack([np.asarray(c[key]) for c in cells]) for key in cells[0]}
    names = ["eps", "cell_seed", "eps_in", "eps_out", "filling", "fill_fraction", "eps_mean"]
    names += ["level", "coef_real", "coef_imag"] if config.cell == "levelset" else ["radius"]
    data = {name: variable(name, stack[name]) for name in names}
    coords = {"cell": coordinate("cell", indices)}
    if config.cell == "levelset":
        orders = np.arange(-config.max_order, config.max_order + 1)
        coords.update(gx=coordinate("gx", orders), gy=coordinate("gy", orders))

    freq = None
    eps_labels = stack["eps"].astype(np.float64)
    label_cpu_s = 0.0
    for pol in config.polarizations if config.labelled else ():
        tick = time.process_time()
        labels = [_label(config, eps_labels[p], pol) for p in positions]
        label_cpu_s += time.process_time() - tick

        def stacked(values: list) -> np.ndarray:
            return _spread(np.stack(values), positions, len(indices))

        if "bands" in config.targets:
            data[f"bands_{pol}"] = variable(f"bands_{pol}", stacked([lab.frequencies for lab in labels]))
        if "group_velocity" in config.targets:
            data[f"group_velocity_{pol}"] = variable(
                f"group_velocity_{pol}", stacked([lab.group_velocities for lab in labels]))
        if "gaps" in config.targets:
            data[f"gaps_{pol}"] = variable(f"gaps_{pol}", stacked([lab.gaps for lab in labels]))
        if "dos" in config.targets:
            freq = labels[0].dos.freq
            data[f"dos_{pol}"] = variable(f"dos_{pol}", stacked([lab.dos.dos_normalized for lab in labels]))
            data[f"dos_eldiff_{pol}"] = variable(f"dos_eldiff_{pol}", stacked([lab.dos.eldiff for lab in labels]))
    if config.labelled and "dos" in config.targets:
        first = config.polarizations[0]
        data["dos"] = (data[f"dos_{first}"][0], data[f"dos_{first}"][1], {**data[f"dos_{first}"][2]})
        data["dos_eldiff"] = (
            data[f"dos_eldiff_{first}"][0], data[f"dos_eldiff_{first}"][1], {**data[f"dos_eldiff_{first}"][2]}
        )
        coords["freq"] = coordinate("freq", freq)
    if config.labelled and {"bands", "group_velocity"} & set(config.targets):
        from photossl.physics.labels import label_kpoints

        kpoints = label_kpoints(config.grid_size, config.solver_options.get("k_grid", SolverOptions().k_grid))
        coords.update(k_x=coordinate("k_x", kpoints[:, 0]), k_y=coordinate("k_y", kpoints[:, 1]))
    if config.labelled and "gaps" in config.targets:
        coords["gap_field"] = gap_field_coordinate()
    if "group_velocity" in config.targets:
        coords["component"] = coordinate("component", np.array(["x", "y"]))

    dataset = xr.Dataset(data, coords=coords)
    config_dict = config.to_dict()
    dataset.attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "photossl_version": photossl_version(),
        "preset": config.preset,
        "config": json.dumps(config_dict, sort_keys=True),
        "seed": config.seed,
        "solver": config.solver,
        "solver_options": json.dumps(config.solver_options, sort_keys=True),
        "dos_method": "ggr" if "dos" in config.targets else "none",
        "units": UNITS,
    }
    stamp_chunk(dataset, start, stop)
    if timing is not None:
        timing["label_cpu_s"] = label_cpu_s
    return dataset


def _write_chunk_task(task: tuple) -> tuple[str, int, int, str, float, list[int] | None]:
    """Generate and write one chunk; runs in a worker. ``task``: (config, start, stop, directory, cells to label or
    None for all). Returns (file name, start, stop, sha256, label CPU seconds, the labelled cells or None)."""
    config, start, stop, directory, label_cells = task
    timing: dict = {}
    dataset = generate_chunk(config, start, stop, timing, label_cells)
    name = chunk_name(start)
    sha = write_chunk(dataset, Path(directory) / name, chunk_encoding(dataset))
    return name, start, stop, sha, timing["label_cpu_s"], label_cells


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
    cells_unlabelled: int = 0  # cells of this writer's share stored without labels (see label_cells)

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
    label_cells=None,
    wait_for_writer: bool = False,
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
        label_cells: indices of the cells whose labels are wanted (None: every cell). The others are stored with
            NaN labels (the first cell of each chunk is labelled anyway); chunks already holding the wanted labels
            are kept, and chunks missing some are relabelled with the union of both sets.
        wait_for_writer: when another live process writes to ``out``, wait for it to finish (then resume from what it
            wrote) instead of refusing.

    Returns:
        GenerateResult. Raises PhotosslError for refused runs (another config, a live lock, a corrupt chunk).
    """
    from tqdm import tqdm

    config.validate()
    wanted = _wanted_labels(label_cells, config)
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
    with WriterLock(out / lock_name(shard_tuple), on_warning=lambda m: say(f"Warning: {m}"), wait=wait_for_writer):
        recorded = _check_existing(out, config)
        remove_dead_tmp_files(chunks_dir)
        index, count = shard_tuple or (0, 1)
        n_chunks = -(-config.n_cells // config.chunk_size)
        mine = [c for c in range(n_chunks) if c % count == index]

        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "photossl_version": photossl_version(),
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
            needed = None if wanted is None else _chunk_labels(wanted, start, stop)
            if entry is not None and path.exists():
                if file_sha256(path) != entry["sha256"]:
                    raise PhotosslError(
                        f"chunk {path} is corrupt or truncated (sha256 differs from the manifest); delete it and "
                        "rerun the same command to regenerate it"
                    )
                has = entry.get("labelled")  # None: every cell is labelled
                if has is None or (needed is not None and set(needed) <= set(has)):
                    manifest["chunks"][name] = {"start": start, "stop": stop, "sha256": entry["sha256"],
                                                **{k: entry[k] for k in ("label_cpu_s", "labelled") if k in entry}}
                    reused += stop - start
                    continue
                # Relabel with more cells: the entry stays out of this manifest until the new chunk is written,
                # so a kill in between leaves a chunk that the next run regenerates, never one it calls corrupt.
                needed = None if needed is None else sorted(set(needed) | set(has))
            todo.append((config, start, stop, str(chunks_dir), needed))
        write_json_atomic(own_manifest, manifest)
        total = sum(min((c + 1) * config.chunk_size, config.n_cells) - c * config.chunk_size for c in mine)
        if reused:
            say(f"resuming: {reused} of {total} cells already in {out}")

        written = 0
        bar = tqdm(total=total, initial=reused, unit="cell", disable=not progress or not todo,
                   desc=f"generate {config.preset}", smoothing=0.1, dynamic_ncols=True, file=sys.stderr)
        t_work = time.perf_counter()
        try:
            for name, start, stop, sha, label_cpu_s, labelled in _run_tasks(todo, workers, scheduler):
                # label_cpu_s: what the chunk's labels cost (CPU seconds, one torch thread per worker)
                manifest["chunks"][name] = {"start": start, "stop": stop, "sha256": sha,
                                            "label_cpu_s": round(label_cpu_s, 4)}
                if labelled is not None and len(labelled) < stop - start:
                    manifest["chunks"][name]["labelled"] = [int(i) for i in labelled]
                write_json_atomic(own_manifest, manifest)
                written += stop - start
                bar.update(stop - start)
        finally:
            bar.close()
        manifest["complete"] = len(manifest["chunks"]) == len(mine)
        write_json_atomic(own_manifest, manifest)
    seconds = time.perf_counter() - (t_work if todo else t0)
    unlabelled = 0
    if config.labelled:
        unlabelled = sum(e["stop"] - e["start"] - len(e["labelled"]) for e in manifest["chunks"].values()
                         if "labelled" in e)
    return GenerateResult(out, own_manifest, total, written, reused, seconds, manifest["complete"], unlabelled)


def _wanted_labels(label_cells, config: GenerateConfig) -> np.ndarray | None:
    """``label_cells`` as sorted unique int64 indices of the dataset's cells; None when every cell is wanted."""
    if label_cells is None or not config.labelled:
        return None
    array = np.asarray(label_cells)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise PhotosslError(f"label_cells must be a 1-D array of cell indices, got dtype {array.dtype} "
                            f"shape {array.shape}")
    array = np.unique(array.astype(np.int64))
    if array.size and (array[0] < 0 or array[-1] >= config.n_cells):
        bad = array[0] if array[0] < 0 else array[-1]
        raise PhotosslError(f"label_cells names cell {bad}, outside the dataset's {config.n_cells} cells")
    return array


def _chunk_labels(wanted: np.ndarray, start: int, stop: int) -> list[int]:
    """The wanted cells of chunk [start, stop), always with its first cell (whose labels fix the shapes)."""
    inside = wanted[(wanted >= start) & (wanted < stop)]
    return sorted({start, *map(int, inside)})


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
    tasks = [(config, start, stop, str(Path(directory).resolve()), cells) for config, start, stop, directory, cells
             in tasks]
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
