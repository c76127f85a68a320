"""Throughput of `photossl generate`: cells/s at 1 and 2 workers, the scaling ratio, and the time for 20k cells.

Runs the real ``generate_dataset`` (generation, labels at the preset's default accuracy, NetCDF writing, manifest
updates, worker start-up) into temporary directories and reports the median over repeats.

    python benchmarks/generate_throughput.py                 # sibcl-p1, 256 cells, workers 1 and 2, 3 repeats
    python benchmarks/generate_throughput.py --n-cells 512 --repeats 5

Start-up (spawning the worker processes, which import torch) is measured on its own with an unlabelled 1-cell-per-
worker run and reported; "steady" rates exclude it, and the 20k projection adds it back once.

Targets (2-core machine): scaling >= 1.8x from 1 to 2 workers; 20 000 cells in <= 15 min. The load average is
printed because other processes on a shared machine slow every run down.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

SCALING_TARGET = 1.8
PROJECTED_CELLS = 20_000
PROJECTED_TARGET_MIN = 15.0


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(config, workers: int) -> tuple[float, float]:
    """Wall and CPU seconds of one complete ``generate_dataset`` run into a fresh directory."""
    from photossl.data.generate import generate_dataset

    with tempfile.TemporaryDirectory(prefix="photossl-bench-") as tmp:
        cpu, start = _cpu_seconds(), time.perf_counter()
        result = generate_dataset(config, os.path.join(tmp, "ds"), workers=workers, progress=False)
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    assert result.complete and result.cells_written == config.n_cells
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="sibcl-p1", help="generate preset (default accuracy settings)")
    parser.add_argument("--n-cells", type=int, default=256, help="cells per run")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="cells per chunk (default: n-cells / 4, so 2 workers get equal shares)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeats", type=int, default=3, help="runs per worker count (median reported)")
    args = parser.parse_args()

    from photossl.data.generate import preset_config

    chunk_size = args.chunk_size or max(1, args.n_cells // 4)
    config = preset_config(args.preset, n_cells=args.n_cells, chunk_size=chunk_size, seed=1234)
    worker_counts = [int(w) for w in args.workers.split(",")]
    print(f"preset {config.preset}: {config.size}x{config.size} cells, {'/'.join(config.polarizations)}, "
          f"{config.n_bands} bands, {config.grid_size}x{config.grid_size} k-grid, solver {config.solver} "
          f"{config.solver_options}, targets {','.join(config.targets)}")
    print(f"{config.n_cells} cells per run in chunks of {chunk_size}; {args.repeats} repeats; "
          f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}")

    startup = {w: statistics.median(
        measure(preset_config(args.preset, n_cells=w, chunk_size=1, targets=[]), w)[0] for _ in range(args.repeats)
    ) for w in worker_counts}
    rates: dict[int, list[float]] = {w: [] for w in worker_counts}
    cpu_per_cell: dict[int, list[float]] = {w: [] for w in worker_counts}
    usage: dict[int, list[float]] = {w: [] for w in worker_counts}
    for _ in range(args.repeats):  # interleaved, so slow phases of a shared machine hit every worker count
        for workers in worker_counts:
            wall, cpu = measure(config, workers)
            rates[workers].append(config.n_cells / wall)
            cpu_per_cell[workers].append(cpu / config.n_cells)
            usage[workers].append(cpu / wall / workers)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    # CPU/wall per worker < 1 means the workers waited: for a core another process had, or for start-up
    print(f"{'workers':>7}  {'cells/s':>8}  {'steady cells/s':>14}  {'start-up s':>10}  {'CPU s/cell':>10}  "
          f"{'CPU/wall/worker':>15}  runs (cells/s)")
    medians, steady = {}, {}
    for workers in worker_counts:
        medians[workers] = statistics.median(rates[workers])
        steady[workers] = config.n_cells / max(config.n_cells / medians[workers] - startup[workers], 1e-9)
        runs = " ".join(f"{r:.2f}" for r in rates[workers])
        print(f"{workers:>7}  {medians[workers]:>8.2f}  {steady[workers]:>14.2f}  {startup[workers]:>10.1f}  "
              f"{statistics.median(cpu_per_cell[workers]):>10.3f}  {statistics.median(usage[workers]):>15.2f}  {runs}")
    if 1 in medians and 2 in medians:
        ratio, steady_ratio = medians[2] / medians[1], steady[2] / steady[1]
        verdict = "meets" if steady_ratio >= SCALING_TARGET else "misses"
        print(f"scaling 1 -> 2 workers: {ratio:.2f}x end to end, {steady_ratio:.2f}x steady "
              f"({verdict} the target >= {SCALING_TARGET}x)")
    best = max(worker_counts)
    minutes = (PROJECTED_CELLS / steady[best] + startup[best]) / 60
    verdict = "meets" if minutes <= PROJECTED_TARGET_MIN else "misses"
    print(f"projected time for {PROJECTED_CELLS} cells at {best} workers: {minutes:.1f} min "
          f"({verdict} the target <= {PROJECTED_TARGET_MIN:.0f} min)")
    idle = PROJECTED_CELLS * statistics.median(cpu_per_cell[best]) / best / 60
    print(f"the same from CPU time, as if {best} cores were free: {idle:.1f} min")


if __name__ == "__main__":
    main()
