"""Accuracy of photossl's DOS labels against a converged reference, on the SIB-CL metric.

For N generated cells (SIB-CL recipe), compares the label DOS made with the default options (25x25 grid, GGR, |G| <= 6
with k.p interpolation) to a reference from a dense grid (default 100x100, GGR, exact solves at |G| <= 8), and prints
the relative L1 error over bins 100-399 (photossl.evaluation.dos_relative_l1, on the DOS / sqrt(mean eps)), with the
plain-histogram label on the same 25x25 bands for comparison. Median over cells.

    python benchmarks/dos_accuracy.py --n-cells 4
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

from photossl.evaluation import dos_relative_l1
from photossl.physics import fourier_level_set_cell, monkhorst_pack_grid, reduce_kpoints, solve_bands_full
from photossl.physics.dos import sibcl_dos
from photossl.physics.labels import label_cell


def reference_dos(eps: np.ndarray, grid: int, cutoff: float) -> np.ndarray:
    kpoints = monkhorst_pack_grid(grid)
    irreducible = reduce_kpoints(kpoints)
    result = solve_bands_full(eps, kpoints[irreducible.indices], "tm", 10, cutoff=cutoff, group_velocities=True,
                              anchor_spacing=None)  # exact solves at every k
    label = sibcl_dos(result.frequencies[0], result.group_velocities[0], float(eps.mean()), 1 / grid,
                      irreducible.weights)
    return label.dos_normalized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cells", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-grid", type=int, default=100)
    parser.add_argument("--reference-cutoff", type=float, default=8.0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    ggr_errors, histogram_errors = [], []
    print(f"{'cell':>4} {'GGR 25x25':>10} {'histogram 25x25':>16}")
    for i in range(args.n_cells):
        eps = fourier_level_set_cell(seed=args.seed + i).eps
        reference = reference_dos(eps, args.reference_grid, args.reference_cutoff)
        labels = label_cell(eps)
        histogram = sibcl_dos(labels.frequencies, None, float(eps.mean())).dos_normalized
        ggr_errors.append(dos_relative_l1(labels.dos.dos_normalized[None], reference[None]))
        histogram_errors.append(dos_relative_l1(histogram[None], reference[None]))
        print(f"{i:>4} {ggr_errors[-1]:>9.3%} {histogram_errors[-1]:>15.3%}")
    print(f"median relative L1 (bins 100-399) vs {args.reference_grid}x{args.reference_grid} reference: "
          f"GGR {statistics.median(ggr_errors):.3%}, histogram {statistics.median(histogram_errors):.3%}")


if __name__ == "__main__":
    main()
