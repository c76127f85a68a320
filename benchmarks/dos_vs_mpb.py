"""DOS labels against a converged MPB DOS on the SIB-CL metric, with the cost of every recipe in the same run.

Reference, per cell (TM, 10 bands, the label's DOS recipe ``photossl.physics.dos.sibcl_dos``: GGR, 2000 bins,
sigma = 10 bins, SIB-CL normalisation): MPB 1.11 (pixel-exact eps, mesh-size 1, tolerance 1e-7, 2 extra bands) bands
and group velocities at ``--resolution`` on the ``--reference-grid``^2 Monkhorst-Pack grid (solved on its irreducible
part: time reversal and the cell's point group), plus the change of that DOS from ``--resolution`` to
the converged limit, measured with MPB on the ``--correction-grid``^2 grid: at ``--fine-resolution`` and its half,
extrapolated by Richardson's step for second-order convergence (``--no-extrapolate``: to ``--fine-resolution`` only).
MPB's DOS converges slowly in resolution on rods (the textbook rods' DOS moves 0.90 % from resolution 32 to 64 and
0.23 % from 64 to 128: second order; 0.08-0.13 % from 128 to the limit), so the k-grid and the resolution are
converged separately; ``--correction-grid 0`` drops the correction (a plain MPB DOS at ``--resolution``). Rows
``mpb32-96`` and ``mpb128-96`` are the reference's parts: the dense DOS at resolution 32 and corrected to 128 only.

Recipes, each as ``label_cell`` makes it on the 25x25 SIB-CL grid: a preset name ("fast": the dataset recipe,
"standard", "high") optionally with ``+dosN`` (the ``dos_grid`` option: the DOS by GGR on the N x N Monkhorst-Pack grid
through the same k.p anchors) or ``+dosNx`` (also ``dos_extrapolate``: Richardson extrapolation of the N x N and
25 x 25 DOS), and ``mpb32`` (MPB at resolution 32 on the 25x25 grid, what ``photossl generate
--solver mpb`` labels with). Error: relative L1 on bins 100-399 of the SIB-CL-normalised DOS
(``photossl.evaluation.dos_relative_l1``). Cost: CPU seconds per cell, one thread (MPB's as its subprocesses').

    python benchmarks/dos_vs_mpb.py --kinds rods --n-cells 1 --reference-grid 48 --correction-grid 16   # minutes
    python benchmarks/dos_vs_mpb.py --json dos_vs_mpb.json   # 3 cells of 5 kinds (README): ~1 CPU hour, mostly MPB
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from photossl.errors import PhotosslError
from photossl.evaluation import dos_relative_l1
from photossl.physics import cell_point_group, monkhorst_pack_grid, reduce_kpoints
from photossl.physics.dos import sibcl_dos
from photossl.physics.labels import label_cell
from photossl.physics.mpb import mpb_available, run_mpb
from photossl.physics.reference_cells import CELL_KINDS, reference_cell
from photossl.physics.solver_options import PRESETS

N_BANDS = 10
LABEL_GRID = 25
MPB_TOLERANCE = 1e-7
MPB_EXTRA_BANDS = 2
DEFAULT_RECIPES = ("fast", "standard", "fast+dos50", "fast+dos100", "fast+dos35x", "fast+dos50x", "standard+dos50",
                   "standard+dos50x", "high+dos50x", "mpb32")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mpb_grid(eps, grid: int, resolution: int, jobs: int, cache_dir: Path | None):
    """(frequencies, velocities, weights, CPU s) of MPB on the irreducible part of the grid^2 Monkhorst-Pack grid.

    ``jobs`` MPB processes take contiguous slices of the k-points (each warm-starts along its own slice)."""
    kpoints = monkhorst_pack_grid(grid)
    irreducible = reduce_kpoints(kpoints, cell_point_group(eps))
    points = kpoints[irreducible.indices]
    key = hashlib.sha256(eps.tobytes() + f"{grid}|{resolution}|{MPB_TOLERANCE}|{MPB_EXTRA_BANDS}".encode())
    path = cache_dir / f"mpb-dos-{key.hexdigest()[:24]}.npz" if cache_dir else None
    if path is not None and path.exists():
        cached = np.load(path)
        return cached["freqs"], cached["velocities"], irreducible.weights, float(cached["cpu"])
    before = children_cpu()
    slices = np.array_split(points, max(1, min(jobs, len(points))))
    with ThreadPoolExecutor(len(slices)) as pool:
        parts = list(pool.map(lambda part: run_mpb(eps, part, "tm", N_BANDS, resolution=resolution,
                                                   extra_bands=MPB_EXTRA_BANDS, tolerance=MPB_TOLERANCE,
                                                   group_velocities=True), slices))
    cpu = children_cpu() - before
    freqs = np.concatenate([f for f, _ in parts])
    velocities = np.concatenate([v for _, v in parts])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, freqs=freqs, velocities=velocities, cpu=cpu)
    return freqs, velocities, irreducible.weights, cpu


def mpb_dos(eps, grid: int, resolution: int, jobs: int, cache_dir: Path | None) -> tuple[np.ndarray, float]:
    freqs, velocities, weights, cpu = mpb_grid(eps, grid, resolution, jobs, cache_dir)
    return sibcl_dos(freqs, velocities, float(eps.mean()), 1.0 / grid, weights).dos_normalized, cpu


def reference_dos(eps, args) -> tuple[np.ndarray, dict, float]:
    """(reference DOS, {name: the MPB DOS it is built from, made dense}, CPU s of all MPB runs).

    The resolution correction on the coarse grid goes to --fine-resolution, and with --extrapolate beyond it:
    D_inf = D_f + (D_f - D_{f/2}) / 3, Richardson's step for MPB's second-order convergence on the staircase."""
    dense, cpu = mpb_dos(eps, args.reference_grid, args.resolution, args.mpb_jobs, args.cache_dir)
    parts = {f"mpb{args.resolution}-{args.reference_grid}": dense}
    if not args.correction_grid:
        return dense, parts, cpu
    coarse, cpu_coarse = mpb_dos(eps, args.correction_grid, args.resolution, args.mpb_jobs, args.cache_dir)
    fine, cpu_fine = mpb_dos(eps, args.correction_grid, args.fine_resolution, args.mpb_jobs, args.cache_dir)
    corrected = dense + fine - coarse
    cpu += cpu_coarse + cpu_fine
    if not args.extrapolate:
        return corrected, parts, cpu
    parts[f"mpb{args.fine_resolution}-{args.reference_grid}"] = corrected
    half, cpu_half = mpb_dos(eps, args.correction_grid, args.fine_resolution // 2, args.mpb_jobs, args.cache_dir)
    return corrected + (fine - half) / 3, parts, cpu + cpu_half


def parse_recipe(name: str) -> tuple[str, dict]:
    """'standard+dos50' -> ('standard', {'dos_grid': 50}); a trailing 'x' adds dos_extrapolate; 'fast' -> ('fast',
    {}); 'mpb32' -> ('mpb32', {})."""
    preset, _, dense = name.partition("+dos")
    extrapolate = dense.endswith("x")
    dense = dense.removesuffix("x")
    if name != "mpb32" and (preset not in PRESETS or (dense and not dense.isdigit()) or (extrapolate and not dense)):
        raise PhotosslError(f"recipe '{name}' is not 'mpb32' or a preset ({', '.join(PRESETS)}) with optional +dosN "
                            f"or +dosNx")
    return preset, ({"dos_grid": int(dense), "dos_extrapolate": extrapolate} if dense else {})


def recipe_dos(eps, name: str, cache_dir: Path | None) -> tuple[np.ndarray, float]:
    """(label DOS, CPU s) of one recipe on the 25x25 label grid."""
    if name == "mpb32":
        return mpb_dos(eps, LABEL_GRID, 32, 1, cache_dir)
    preset, dense = parse_recipe(name)
    options = {**PRESETS[preset].as_dict(), **dense}
    start = time.process_time()
    labels = label_cell(eps, "tm", N_BANDS, LABEL_GRID, solver_options=options)
    return labels.dos.dos_normalized, time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=["levelset-p1", "levelset-p4m", "rods", "holes", "cylinder"],
                        choices=list(CELL_KINDS))
    parser.add_argument("--n-cells", type=int, default=3, help="cells per kind (seeds 0, 1, ...; seed 0 of rods and "
                                                               "holes is the textbook cell)")
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES),
                        help="presets with optional +dosN or +dosNx, and mpb32")
    parser.add_argument("--resolution", type=int, default=32, help="MPB resolution on the dense reference grid")
    parser.add_argument("--reference-grid", type=int, default=96, help="k-points per axis of the reference")
    parser.add_argument("--fine-resolution", type=int, default=128, help="MPB resolution the reference is corrected "
                                                                         "to")
    parser.add_argument("--correction-grid", type=int, default=16,
                        help="k-points per axis of the resolution correction (0: none)")
    parser.add_argument("--extrapolate", action=argparse.BooleanOptionalAction, default=True,
                        help="extrapolate the correction beyond --fine-resolution from it and its half")
    parser.add_argument("--mpb-jobs", type=int, default=1, help="MPB processes at once")
    parser.add_argument("--cache-dir", type=Path, default=None, help="directory caching MPB results between runs")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this JSON file")
    args = parser.parse_args(argv)
    try:
        for name in args.recipes:
            parse_recipe(name)
    except PhotosslError as err:
        parser.error(str(err))
    if not mpb_available():
        print("mpb not found on PATH (Debian/Ubuntu: apt install mpb); nothing to compare against", file=sys.stderr)
        return 0
    torch.set_num_threads(1)
    target = (f"res {args.fine_resolution // 2} & {args.fine_resolution} extrapolated" if args.extrapolate
              else f"res {args.fine_resolution}")
    correction = (f" + ({target} - res {args.resolution}) on {args.correction_grid}x{args.correction_grid}"
                  if args.correction_grid else "")
    print(f"reference: MPB res {args.resolution} on {args.reference_grid}x{args.reference_grid} (GGR with MPB's "
          f"velocities){correction}; TM, {N_BANDS} bands; error: relative L1, bins 100-399, SIB-CL-normalised DOS")
    label_cell(reference_cell("rods"), "tm", N_BANDS, LABEL_GRID)  # warm-up

    methods = [f"mpb{args.resolution}-{args.reference_grid}", *args.recipes]
    if args.correction_grid and args.extrapolate:
        methods.insert(1, f"mpb{args.fine_resolution}-{args.reference_grid}")
    print(f"{'kind':13s} {'seed':>4s} {'ref cpu s':>9s}  " + " ".join(f"{m:>16s}" for m in methods), flush=True)
    records = []
    for kind in args.kinds:
        for seed in range(args.n_cells):
            eps = reference_cell(kind, seed)
            reference, parts, reference_cpu = reference_dos(eps, args)
            results = {name: (dos, None) for name, dos in parts.items()}
            for name in args.recipes:
                results[name] = recipe_dos(eps, name, args.cache_dir)
            errors = {m: float(dos_relative_l1(d[None], reference[None])) for m, (d, _) in results.items()}
            records.append({"kind": kind, "seed": seed, "reference_cpu_s": reference_cpu, "error": errors,
                            "cpu_s": {m: cost for m, (_, cost) in results.items() if cost is not None}})
            print(f"{kind:13s} {seed:4d} {reference_cpu:9.0f}  "
                  + " ".join(f"{100 * errors[m]:15.3f}%" for m in methods), flush=True)

    print(f"\nper kind: median / worst error over {args.n_cells} cell(s), median CPU s per cell (x fast's)")
    for kind in args.kinds:
        chosen = [r for r in records if r["kind"] == kind]
        fast = statistics.median(r["cpu_s"]["fast"] for r in chosen) if "fast" in args.recipes else None
        for method in methods:
            errors = [r["error"][method] for r in chosen]
            costs = [r["cpu_s"][method] for r in chosen if method in r["cpu_s"]]
            cost = statistics.median(costs) if costs else None
            cost_text = "" if cost is None else f"  {cost:8.2f} s" + (f" ({cost / fast:5.1f}x)" if fast else "")
            print(f"  {kind:13s} {method:16s} {100 * statistics.median(errors):7.3f} % / {100 * max(errors):7.3f} %"
                  f"{cost_text}")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                                         "records": records}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
