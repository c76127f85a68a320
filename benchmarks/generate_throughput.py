"""Throughput of `photossl generate`: cells/s at 1 and 2 workers, the scaling ratio, and the time for 20k cells.

Runs the real ``generate_dataset`` (generation, labels at the preset's default accuracy, NetCDF writing, manifest
updates, worker start-up) into temporary directories and reports the median over repeats.

    python benchmarks/generate_throughput.py                 # sibcl-p1, 128 cells, workers 1 and 2, 3 repeats
    python benchmarks/generate_throughput.py --n-cells 256 --repeats 5

Targets (2-core machine): scaling >= 1.8x from 1 to 2 workers; 20 000 cells in <= 15 min. The load average is
printed because other processes on a shared machine slow every run down.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

SCALING_TARGET = 1.8
PROJECTED_CELLS = 20_000
PROJECTED_TARGET_MIN = 15.0


def measure(config, workers: int) -> float:
    """Seconds for one complete ``generate_dataset`` run into a fresh directory."""
    from photossl.data.generate import generate_dataset

    with tempfile.TemporaryDirectory(prefix="photossl-bench-") as tmp:
        start = time.perf_counter()
        result = generate_dataset(config, os.path.join(tmp, "ds"), workers=workers, progress=False)
        seconds = time.perf_counter() - start
    assert result.complete and result.cells_written == config.n_cells
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="sibcl-p1", help="generate preset (default accuracy settings)")
    parser.add_argument("--n-cells", type=int, default=128, help="cells per run")
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

    rates: dict[int, list[float]] = {w: [] for w in worker_counts}
    for _ in range(args.repeats):  # interleaved, so slow phases of a shared machine hit every worker count
        for workers in worker_counts:
            rates[workers].append(config.n_cells / measure(config, workers))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'workers':>7}  {'median cells/s':>14}  runs")
    medians = {}
    for workers in worker_counts:
        medians[workers] = statistics.median(rates[workers])
        runs = " ".join(f"{r:.2f}" for r in rates[workers])
        print(f"{workers:>7}  {medians[workers]:>14.2f}  {runs}")
    if 1 in medians and 2 in medians:
        ratio = medians[2] / medians[1]
        verdict = "meets" if ratio >= SCALING_TARGET else "misses"
        print(f"scaling 1 -> 2 workers: {ratio:.2f}x ({verdict} the target >= {SCALING_TARGET}x)")
    best = max(worker_counts)
    minutes = PROJECTED_CELLS / medians[best] / 60
    verdict = "meets" if minutes <= PROJECTED_TARGET_MIN else "misses"
    print(f"projected time for {PROJECTED_CELLS} cells at {best} workers: {minutes:.1f} min "
          f"({verdict} the target <= {PROJECTED_TARGET_MIN:.0f} min)")


if __name__ == "__main__":
    main()
