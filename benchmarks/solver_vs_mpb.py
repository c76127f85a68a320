"""photossl's band solver against MPB on the SIB-CL label recipe: speed per cell and deviation of the bands.

Recipe: 32x32 Fourier level-set cells (photossl.physics.fourier_level_set_cell, the SIB-CL ranges), the 25x25 grid
k = linspace(-0.48, 0.48, 25) in both axes (625 k-points), 10 bands, MPB at resolution 32 on the identical pixel map
(one MPB subprocess per cell, all k-points in one run). photossl is timed through its label function
(photossl.physics.labels.label_cell) when present, else through solve_bands.

    python benchmarks/solver_vs_mpb.py --n-cells 4 --seed 0
    python benchmarks/solver_vs_mpb.py --solver-options cutoff=6 --polarization te
"""

from __future__ import annotations

import argparse
import ast
import resource
import statistics
import sys
import time

import numpy as np
import torch

from photossl.physics import fourier_level_set_cell, sibcl_grid, solve_bands
from photossl.physics.mpb import mpb_available, run_mpb

try:  # the label recipe (symmetry reduction, velocities, DOS) where the package has one
    from photossl.physics import labels as _labels
except ImportError:  # pragma: no cover - older trees
    _labels = None


def sibcl_kpoints(n: int = 25) -> np.ndarray:
    """(n*n, 2) grid k_x, k_y = linspace(-0.48, 0.48, n), k_x slowest: the package's grid, checked against the recipe."""
    kpoints = sibcl_grid(n)
    axis = np.linspace(-0.5 + 0.02, 0.5 - 0.02, n)
    kx, ky = np.meshgrid(axis, axis, indexing="ij")
    np.testing.assert_allclose(kpoints, np.stack([kx.ravel(), ky.ravel()], axis=1), atol=1e-12)
    return kpoints


def parse_options(pairs: list[str]) -> dict:
    """key=value pairs; values are Python literals where they parse (6 -> int, 0.25 -> float), else strings."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--solver-options expects key=value, got {pair!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def relative_deviation(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|a - b| / b with b floored at 1e-3, so the zero mode at Gamma compares absolutely."""
    return np.abs(values - reference) / np.maximum(reference, 1e-3)


def photossl_bands(eps, kpoints, args, options):
    """(freqs (K, n_bands), velocities (K, n_bands, 2) or None) from the label function or solve_bands."""
    if _labels is not None and hasattr(_labels, "label_cell") and len(kpoints) == args.grid_size**2:
        merged = {**getattr(_labels, "DEFAULT_SOLVER_OPTIONS", {}), **options}
        result = _labels.label_cell(
            eps, args.polarization, args.n_bands, grid_size=args.grid_size, dos=args.group_velocities,
            solver_options=merged,
        )
        return result.frequencies, result.group_velocities
    return solve_bands(eps, kpoints, args.polarization, args.n_bands, **options), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-cells", type=int, default=4, help="number of generated cells")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first cell (cells use seed, seed+1, ...)")
    parser.add_argument("--polarization", choices=["tm", "te"], default="tm", help="polarization (recipe: tm)")
    parser.add_argument("--n-bands", type=int, default=10, help="bands compared (recipe: 10)")
    parser.add_argument("--grid-size", type=int, default=25, help="k-grid points per axis (recipe: 25)")
    parser.add_argument(
        "--solver-options", nargs="*", default=[], metavar="KEY=VALUE",
        help="accuracy options for photossl (merged over the label defaults), e.g. cutoff=6",
    )
    parser.add_argument(
        "--group-velocities", action=argparse.BooleanOptionalAction, default=True,
        help="compute group velocities in both codes, as the recipe does (photossl then also computes the DOS)",
    )
    parser.add_argument(
        "--mpb-extra-bands", type=int, default=0,
        help="bands MPB computes beyond --n-bands (recipe: 0, i.e. exactly 10 bands in one block)",
    )
    parser.add_argument("--mpb-timeout", type=float, default=600.0, help="seconds per MPB run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (MPB runs on one core)")
    args = parser.parse_args(argv)
    if args.n_cells < 1:
        parser.error("--n-cells must be >= 1")
    if not mpb_available():
        print("mpb not found on PATH (Debian/Ubuntu: apt install mpb)", file=sys.stderr)
        return 1

    torch.set_num_threads(args.threads)
    options = parse_options(args.solver_options)
    kpoints = sibcl_kpoints(args.grid_size)
    cells = [fourier_level_set_cell(args.seed + i, n=32) for i in range(args.n_cells)]
    using_labels = _labels is not None and hasattr(_labels, "label_cell")
    print(
        f"{args.n_cells} cells (seed {args.seed}..), {len(kpoints)} k-points, {args.n_bands} "
        f"{args.polarization.upper()} bands, group velocities {'on' if args.group_velocities else 'off'}, "
        f"torch threads {args.threads}; photossl via {'label_cell' if using_labels else 'solve_bands'} "
        f"options {options or 'default'}"
    )
    photossl_bands(cells[0].eps, kpoints[:4], args, options)  # warm-up (imports, first torch calls)

    rows, mpb_times, our_times, worst, worst_band, worst_velocity = [], [], [], [], [], []
    mpb_cpu, our_cpu = [], []
    for index, cell in enumerate(cells):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        reference = run_mpb(
            cell.eps, kpoints, args.polarization, args.n_bands, extra_bands=args.mpb_extra_bands,
            timeout=args.mpb_timeout, group_velocities=args.group_velocities,
        )
        mpb_times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        mpb_cpu.append(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime)
        start, start_cpu = time.perf_counter(), time.process_time()
        freqs, velocities = photossl_bands(cell.eps, kpoints, args, options)
        our_times.append(time.perf_counter() - start)
        our_cpu.append(time.process_time() - start_cpu)

        mpb_freqs, mpb_velocities = reference if args.group_velocities else (reference, None)
        deviation = relative_deviation(np.asarray(freqs), mpb_freqs)
        worst.append(deviation.max())
        worst_band.append(deviation.max(axis=0))
        velocity_text = ""
        if velocities is not None and mpb_velocities is not None:
            # Velocities of (nearly) degenerate bands depend on the basis chosen inside the subspace: skip them.
            gaps = np.diff(mpb_freqs, axis=1)
            isolated = np.ones_like(mpb_freqs, dtype=bool)
            isolated[:, :-1] &= gaps > 1e-3
            isolated[:, 1:] &= gaps > 1e-3
            dv = np.linalg.norm(np.asarray(velocities) - mpb_velocities, axis=-1)[isolated]
            worst_velocity.append(dv.max())
            velocity_text = f"  {dv.max():10.4f}"
        rows.append(
            f"{index:4d}  {cell.eps_in:6.2f}  {cell.eps_out:6.2f}  {cell.filling:5.2f}  {mpb_times[-1]:7.2f}  "
            f"{mpb_cpu[-1]:7.2f}  {our_times[-1]:10.3f}  {our_cpu[-1]:12.3f}  "
            f"{100 * deviation.max():7.3f}%  {100 * np.percentile(deviation, 99):7.3f}%"
            + velocity_text
        )

    header = "cell  eps_in eps_out  fill    mpb_s  mpb_cpu  photossl_s  photossl_cpu  max_dev   p99_dev"
    if worst_velocity:
        header += "  max_|dv|_c"
    print(header)
    print("\n".join(rows))
    mpb_median, our_median = statistics.median(mpb_times), statistics.median(our_times)
    mpb_cpu_median, our_cpu_median = statistics.median(mpb_cpu), statistics.median(our_cpu)
    print(f"median wall seconds per cell: MPB {mpb_median:.3f}, photossl {our_median:.3f}; "
          f"speed ratio MPB/photossl {mpb_median / our_median:.1f}x")
    print(f"median CPU seconds per cell:  MPB {mpb_cpu_median:.3f}, photossl {our_cpu_median:.3f}; "
          f"speed ratio MPB/photossl {mpb_cpu_median / our_cpu_median:.1f}x (CPU time is robust to a busy machine)")
    band_text = " ".join(f"{100 * v:.3f}" for v in np.max(worst_band, axis=0))
    print(f"max relative deviation over all cells, k-points and {args.n_bands} bands: {100 * max(worst):.3f}%")
    print(f"per band (%): {band_text}")
    if worst_velocity:
        print(f"max |v_photossl - v_MPB| (non-degenerate bands, units of c): {max(worst_velocity):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
