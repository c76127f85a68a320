"""Band accuracy and cost of photossl's presets and of MPB at resolution 32, against MPB at a high resolution.

For every kind of cell the generators make (Fourier level sets of plane groups p1, pm, p4m; rods in air; air holes;
SIB-CL's surrogate cylinder; binary random pixels) and each polarization, bands 1-10 at a few k-points of the SIB-CL
25x25 label grid are compared with MPB at ``--reference-resolution`` (default 128) on the same pixel staircase (MPB
reads the map pixel-exactly: photossl.physics.mpb). Relative error |f - f_ref| / f_ref (f_ref floored at 1e-3).

Costs per cell, side by side in the same run, one thread each:
- photossl: CPU seconds of ``label_cell`` on the full 25x25 grid (symmetry reduction, bands, group velocities, DOS).
- MPB res 32 (tolerance 1e-7, one eigensolver block, 2 extra bands, mesh-size 1, no group velocities): CPU seconds
  on the cell's irreducible 25x25 grid, extrapolated from runs on its first 1 and 16 points; ``--mpb-full-grid``
  measures the whole grid instead (about 10-60 s per cell and polarization).

The default k-points are grid points as far from the k.p anchors (spacing 0.25) as the grid allows, plus the grid
points next to X and M; ``--n-kpoints`` adds random grid points. MPB results are cached under ``--cache-dir`` (keyed
by map, k-points and settings, with the CPU seconds they took) so reruns only redo photossl.

    python benchmarks/solver_vs_mpb.py --cache-dir ~/.cache/photossl-mpb   # 7 kinds x TM/TE, 1 cell, 4 k-points
    python benchmarks/solver_vs_mpb.py --n-cells 3 --n-kpoints 8 --kinds levelset-p1 random-pixels
    python benchmarks/solver_vs_mpb.py --presets fast standard high --polarizations te --json results.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from photossl.physics import cell_point_group, reduce_kpoints, sibcl_grid, solve_bands
from photossl.physics.labels import label_cell
from photossl.physics.mpb import mpb_available, run_mpb
from photossl.physics.reference_cells import CELL_KINDS, reference_cell
from photossl.physics.solver_options import PRESETS

N_BANDS = 10
MPB_TOLERANCE = 1e-7
MPB_EXTRA_BANDS = 2
# Grid points of linspace(-0.48, 0.48, 25) farthest from the anchor grid (multiples of 0.25), then next to X and M.
DEFAULT_KPOINTS = np.array([[0.12, 0.36], [-0.36, 0.12], [0.48, 0.0], [0.48, 0.48]])


KINDS = {kind: (lambda seed, kind=kind: reference_cell(kind, seed)) for kind in CELL_KINDS}


def relative_error(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|a - b| / b with b floored at 1e-3, so a zero mode at Gamma compares absolutely."""
    return np.abs(values - reference) / np.maximum(reference, 1e-3)


def cached_mpb(eps, kpoints, polarization, resolution, cache_dir: Path | None, timeout: float):
    """(frequencies (K, N_BANDS), CPU seconds) of one MPB run; a cached run returns the CPU seconds it recorded."""
    key = hashlib.sha256(
        eps.tobytes() + kpoints.tobytes()
        + f"{polarization}|{N_BANDS}|{resolution}|{MPB_TOLERANCE}|{MPB_EXTRA_BANDS}".encode()
    ).hexdigest()[:24]
    path = cache_dir / f"mpb-{key}.npy" if cache_dir else None
    if path is not None and path.exists():
        return np.load(path), float(np.load(path.with_suffix(".cpu.npy")))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    freqs = run_mpb(eps, kpoints, polarization, N_BANDS, resolution=resolution, extra_bands=MPB_EXTRA_BANDS,
                    tolerance=MPB_TOLERANCE, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, freqs)
        np.save(path.with_suffix(".cpu.npy"), np.array(cpu))
    return freqs, cpu


def mpb_cost(eps, polarization, cache_dir, timeout, full_grid: bool) -> float:
    """CPU seconds of MPB res 32 per cell on its irreducible 25x25 grid: measured (``full_grid``), or start-up plus
    the marginal cost per k-point, both fitted from runs on the first 1 and 16 irreducible grid points (consecutive
    grid points, so MPB warm-starts from the previous k-point's fields as on the full grid)."""
    points, n_irreducible = irreducible_grid(eps)
    if full_grid:
        return cached_mpb(eps, points, polarization, 32, cache_dir, timeout)[1]
    one = cached_mpb(eps, points[:1], polarization, 32, cache_dir, timeout)[1]
    many = cached_mpb(eps, points[:16], polarization, 32, cache_dir, timeout)[1]
    per_k = max(many - one, 0.0) / 15
    return one - per_k + per_k * n_irreducible


def irreducible_grid(eps) -> tuple[np.ndarray, int]:
    grid = sibcl_grid(25)
    irreducible = reduce_kpoints(grid, cell_point_group(eps))
    return grid[irreducible.indices], len(irreducible.indices)


def photossl_cost(eps, polarization, options) -> float:
    """CPU seconds of the full label recipe (625 k-points, symmetry, velocities, DOS) with ``options``."""
    start = time.process_time()
    label_cell(eps, polarization, N_BANDS, 25, dos=True, solver_options=options.as_dict())
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS), help="cell kinds compared")
    parser.add_argument("--n-cells", type=int, default=1, help="cells per kind (seeds 0, 1, ...)")
    parser.add_argument("--polarizations", nargs="+", default=["tm", "te"], choices=["tm", "te"])
    parser.add_argument("--presets", nargs="+", default=["fast", "standard"], choices=list(PRESETS),
                        help="photossl accuracy presets (photossl.physics.solver_options.PRESETS; 'high' costs about "
                             "as much as MPB res 32)")
    parser.add_argument("--n-kpoints", type=int, default=0,
                        help="random 25x25-grid k-points added to the 4 default ones")
    parser.add_argument("--reference-resolution", type=int, default=128, help="MPB resolution of the reference")
    parser.add_argument("--mpb-full-grid", action="store_true",
                        help="time MPB res 32 on the cell's whole irreducible 25x25 grid (slow) instead of scaling")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost measurements")
    parser.add_argument("--cache-dir", type=Path, default=None, help="directory caching MPB results between runs")
    parser.add_argument("--mpb-timeout", type=float, default=900.0, help="seconds per MPB run")
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this JSON file")
    args = parser.parse_args(argv)
    if not mpb_available():
        print("mpb not found on PATH (Debian/Ubuntu: apt install mpb)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    grid = sibcl_grid(25)
    extra = grid[np.random.default_rng(0).choice(len(grid), args.n_kpoints, replace=False)] if args.n_kpoints else []
    kpoints = np.concatenate([DEFAULT_KPOINTS, np.reshape(extra, (-1, 2))])
    print(f"{len(args.kinds)} kinds x {args.n_cells} cells, {len(kpoints)} k-points, bands 1-{N_BANDS}; reference MPB "
          f"res {args.reference_resolution}; MPB: tolerance {MPB_TOLERANCE:g}, one block, {MPB_EXTRA_BANDS} extra "
          f"bands, mesh-size 1, 1 thread; photossl: 1 torch thread, cost = label_cell on the 25x25 grid")
    for name in args.presets:
        print(f"  {name}: {PRESETS[name]}")
    solve_bands(KINDS["levelset-p1"](0), kpoints[:1], "tm", N_BANDS)  # warm-up

    records = []
    header = (f"{'kind':14s} {'pol':3s} {'method':9s} {'worst %':>8s} {'median %':>9s} {'cpu s/cell':>10s} "
              f"{'vs MPB32':>9s}")
    print(header)
    for kind in args.kinds:
        for seed in range(args.n_cells):
            eps = KINDS[kind](seed)
            for pol in args.polarizations:
                reference, _ = cached_mpb(eps, kpoints, pol, args.reference_resolution, args.cache_dir,
                                          args.mpb_timeout)
                mpb32, _ = cached_mpb(eps, kpoints, pol, 32, args.cache_dir, args.mpb_timeout)
                rows = {"mpb32": (mpb32, None if args.no_cost else mpb_cost(
                    eps, pol, args.cache_dir, args.mpb_timeout, args.mpb_full_grid))}
                for name in args.presets:
                    options = PRESETS[name]
                    bands = solve_bands(eps, kpoints, pol, N_BANDS, options=options)
                    rows[name] = (bands, None if args.no_cost else photossl_cost(eps, pol, options))
                for method, (bands, cost) in rows.items():
                    error = relative_error(bands, reference)
                    ratio = None if cost is None or rows["mpb32"][1] is None else rows["mpb32"][1] / cost
                    record = {"kind": kind, "seed": seed, "polarization": pol, "method": method,
                              "worst": float(error.max()), "median": float(np.median(error)), "cpu_s": cost,
                              "speedup_vs_mpb32": ratio, "worst_per_band": error.max(axis=0).tolist()}
                    records.append(record)
                    cost_text = f"{cost:10.3f}" if cost is not None else f"{'-':>10s}"
                    ratio_text = f"{ratio:8.1f}x" if ratio is not None else f"{'-':>9s}"
                    print(f"{kind:14s} {pol:3s} {method:9s} {100 * error.max():8.3f} {100 * np.median(error):9.4f} "
                          f"{cost_text} {ratio_text}", flush=True)

    print("\nsummary over all cells: worst (median of per-cell worst) %, median CPU s/cell")
    methods = ["mpb32", *args.presets]
    for pol in args.polarizations:
        for method in methods:
            chosen = [r for r in records if r["polarization"] == pol and r["method"] == method]
            worst = [r["worst"] for r in chosen]
            costs = [r["cpu_s"] for r in chosen if r["cpu_s"] is not None]
            cost_text = f", {np.median(costs):.3f} s/cell" if costs else ""
            print(f"  {pol} {method:9s} worst {100 * max(worst):.3f} % (median cell {100 * np.median(worst):.3f} %)"
                  f"{cost_text}")
        for name in args.presets:
            beaten = [k for k in args.kinds for seed in range(args.n_cells)
                      if _worst(records, k, seed, pol, name) > _worst(records, k, seed, pol, "mpb32")]
            print(f"  {pol} {name}: worse than MPB res 32 on {sorted(set(beaten)) or 'no cell'}")
    if args.json:
        args.json.write_text(json.dumps({"kpoints": kpoints.tolist(), "records": records,
                                         "presets": {n: PRESETS[n].as_dict() for n in args.presets},
                                         "reference_resolution": args.reference_resolution}, indent=1))
    return 0


def _worst(records, kind, seed, pol, method) -> float:
    return next(r["worst"] for r in records
                if (r["kind"], r["seed"], r["polarization"], r["method"]) == (kind, seed, pol, method))


if __name__ == "__main__":
    raise SystemExit(main())
