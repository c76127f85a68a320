"""Labelling throughput of the band solver on the CPU and on a CUDA GPU, side by side.

Runs the dataset's own labelling call (``label_cell``: symmetry-reduced k-points of the 25x25 SIB-CL grid, 10 TM
bands, group velocities, GGR DOS, gaps) on SIB-CL p1 level-set cells, for each accuracy preset, on each device, and
prints cells/s with the ratio against the CPU measured in the same run.

    python benchmarks/solver_devices.py                         # CPU only where no GPU is present
    python benchmarks/solver_devices.py --n-cells 64 --presets fast,standard --threads 16

The CPU side uses ``--threads`` torch threads in this one process (``photossl generate`` runs one such process per
worker, so its CPU rate scales with the workers); the GPU side solves one cell at a time in double precision, as the
solver does on every device.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

import torch

from photossl.physics import fourier_level_set_cell
from photossl.physics.labels import label_cell
from photossl.physics.solver_options import PRESETS


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def cells_per_second(cells, preset: str, device: str, polarization: str, repeats: int) -> float:
    """Median over ``repeats`` passes of (cells / wall seconds) for labelling every cell, after one warm-up cell."""
    options = {"device": device, **dataclasses.asdict(PRESETS[preset])}
    label_cell(cells[0], polarization, solver_options=options)
    rates = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        for eps in cells:
            label_cell(eps, polarization, solver_options=options)
        _synchronize(device)
        rates.append(len(cells) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=16, help="cells per pass [16]")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per row; the median is reported [3]")
    parser.add_argument("--presets", default="fast,standard", help="comma-separated accuracy presets [fast,standard]")
    parser.add_argument("--polarization", default="tm", choices=("tm", "te"))
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="CPU torch threads [2]")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu",
                        help="comma-separated devices [cpu, and cuda where available]")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [d for d in args.devices.split(",") if d]
    if any(d.startswith("cuda") for d in devices) and not torch.cuda.is_available():
        parser.error("cuda requested but no CUDA GPU is available")

    cells = [fourier_level_set_cell(seed=seed).eps for seed in range(args.n_cells)]
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    print(f"label_cell on {args.n_cells} SIB-CL p1 cells, {args.polarization.upper()}, 10 bands, 25x25 grid with DOS; "
          f"median of {args.repeats} passes")
    print(f"torch {torch.__version__}; CPU {platform.processor() or platform.machine()} ({args.threads} threads); "
          f"GPU {gpu}")
    header = f"{'preset':<9} {'device':<7} {'cells/s':>9} {'ms/cell':>9} {'vs CPU':>8}"
    print(header)
    print("-" * len(header))
    for preset in args.presets.split(","):
        cpu_rate = None
        for device in devices:
            rate = cells_per_second(cells, preset, device, args.polarization, args.repeats)
            cpu_rate = rate if device == "cpu" else cpu_rate
            ratio = f"{rate / cpu_rate:>7.2f}x" if cpu_rate else f"{'-':>8}"
            print(f"{preset:<9} {device:<7} {rate:>9.2f} {1000 / rate:>9.1f} {ratio}", flush=True)


if __name__ == "__main__":
    main()
