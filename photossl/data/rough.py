"""Rough labels of a dataset's cells (multi-fidelity): the same cells labelled by photossl's own solver at a cheap
setting, stored as a second photossl dataset, and what labels of either fidelity cost.

The rough dataset's config is the exact dataset's generate config with only the label accuracy replaced (the k-grid,
the solver options) and the labels cut to the one target needed, so :func:`~photossl.data.generate_dataset` makes the
same permittivity maps cell for cell (:func:`generate_rough_dataset` checks it) and labels them cheaply: chunked,
resumable and shardable like any generate run. The SIB-CL DOS of any k-grid and cutoff lies on the same 400 scaled
frequencies, so a network trained on rough DOS labels regresses the exact target's quantity.

Cost is CPU seconds spent in the labels (one torch thread), as recorded per chunk in a manifest (``label_cpu_s``)
or measured by :func:`measure_label_cost` on a few cells. What one fidelity costs against the other is measured by
:func:`measure_cost_ratio`, both on the same cells in turn.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photossl.config import build_config
from photossl.data.generate import SOLVERS, GenerateConfig, generate_chunk, generate_dataset
from photossl.data.storage import read_manifests
from photossl.errors import PhotosslError
from photossl.physics.labels import ROUGH_GRID_SIZE, ROUGH_SOLVER_OPTIONS

__all__ = [
    "ROUGH_LABEL_KEYS",
    "CostRatio",
    "RoughDataset",
    "dataset_generate_config",
    "generate_rough_dataset",
    "label_cpu_per_cell",
    "measure_cost_ratio",
    "measure_label_cost",
    "rough_config",
]

# Generate keys a rough recipe may set: the label accuracy. Everything else (the cells) is the exact dataset's.
ROUGH_LABEL_KEYS = ("grid_size", "solver_options", "use_symmetry")
# What each fine-tuning target needs generated.
_TARGET_LABELS = {"dos": "dos", "dos_eldiff": "dos", "gaps": "gaps"}


def dataset_generate_config(directory: str | Path) -> GenerateConfig:
    """The generate config of a dataset folder (from its manifest); refused for one not made by photossl generate."""
    manifests = read_manifests(directory)
    if not manifests:
        raise PhotosslError(f"{directory} is not a photossl dataset (no manifest)")
    values = dict(next(iter(manifests.values()))["config"])
    if values.get("solver") not in SOLVERS:
        raise PhotosslError(
            f"{directory} was not made by photossl generate (solver {values.get('solver')!r}), so its cells cannot be "
            "regenerated for rough labels"
        )
    return build_config(GenerateConfig, values)


def rough_config(exact: GenerateConfig, target: str = "dos_eldiff", polarization: str = "tm",
                 **recipe) -> GenerateConfig:
    """The config of rough labels of ``exact``'s cells: the default rough recipe (a 15 x 15 Monkhorst-Pack k-grid,
    |G| <= 2, see :data:`photossl.physics.labels.ROUGH_SOLVER_OPTIONS`) with ``recipe`` (keys of
    :data:`ROUGH_LABEL_KEYS`; ``solver_options`` are merged over the rough ones) applied, the labels cut to what
    ``target`` of ``polarization`` needs, always with photossl's plane-wave solver.
    """
    unknown = sorted(set(recipe) - set(ROUGH_LABEL_KEYS))
    if unknown:
        raise PhotosslError(f"rough recipe key '{unknown[0]}' is not a label setting (allowed: "
                            f"{', '.join(ROUGH_LABEL_KEYS)})")
    if target not in _TARGET_LABELS:
        raise PhotosslError(f"rough labels exist for the targets {', '.join(_TARGET_LABELS)}, not '{target}' "
                            "(bands on another k-grid are another quantity)")
    values = exact.to_dict()
    options = {**ROUGH_SOLVER_OPTIONS, **(recipe.pop("solver_options", None) or {})}
    values.update({"solver": "pwe", "grid_size": ROUGH_GRID_SIZE, **recipe, "solver_options": options,
                   "targets": [_TARGET_LABELS[target]], "polarizations": [polarization]})
    config = build_config(GenerateConfig, values)
    config.validate()
    return config


def label_cpu_per_cell(directory: str | Path) -> tuple[float, int] | None:
    """(CPU seconds per labelled cell, cells timed) from the manifests' ``label_cpu_s``; None when no chunk records
    it. A chunk labelled in part counts the cells it lists under ``labelled``."""
    seconds, cells = 0.0, 0
    for manifest in read_manifests(directory).values():
        for entry in manifest["chunks"].values():
            if isinstance(entry.get("label_cpu_s"), (int, float)):
                seconds += float(entry["label_cpu_s"])
                labelled = entry.get("labelled")
                cells += int(entry["stop"]) - int(entry["start"]) if labelled is None else len(labelled)
    return (seconds / cells, cells) if cells else None


def measure_label_cost(config: GenerateConfig, n_cells: int = 16) -> float:
    """CPU seconds per cell that ``config``'s labels take, on its first ``n_cells`` cells (one torch thread)."""
    n_cells = min(n_cells, config.n_cells)
    timing: dict = {}
    generate_chunk(config, 0, n_cells, timing)
    return timing["label_cpu_s"] / n_cells


@dataclass(frozen=True)
class CostRatio:
    """Exact and rough labels of the same cells timed side by side (:func:`measure_cost_ratio`): CPU seconds per
    label of each (medians over the rounds) and the exact-over-rough ratio (median of the rounds' ratios)."""

    cells: int
    rounds: int
    exact_per_label_s: float
    rough_per_label_s: float
    exact_over_rough: float
    per_round: tuple[float, ...]


def measure_cost_ratio(exact: GenerateConfig, rough: GenerateConfig, n_cells: int = 16,
                       rounds: int = 3) -> CostRatio:
    """How many rough labels one exact label costs, on the first ``n_cells`` cells (one torch thread).

    Each cell is labelled exactly and then roughly, cell after cell, so both see the same load on the machine;
    one untimed cell of each first keeps one-off setup out of either (it weighs most on the cheap labels). Timing
    each fidelity's cells in one block instead moved the ratio by ±20 % from run to run on a busy machine, this
    by ±3 %. Raises PhotosslError for fewer than one cell or round.
    """
    n_cells = min(n_cells, exact.n_cells, rough.n_cells)
    if n_cells < 1 or rounds < 1:
        raise PhotosslError(f"measuring a cost ratio needs at least one cell and one round, got {n_cells} cells and "
                            f"{rounds} rounds")

    def seconds(config: GenerateConfig, cell: int) -> float:
        timing: dict = {}
        generate_chunk(config, cell, cell + 1, timing)
        return timing["label_cpu_s"]

    seconds(exact, 0), seconds(rough, 0)
    exact_means, rough_means, ratios = [], [], []
    for _ in range(rounds):
        pairs = [(seconds(exact, cell), seconds(rough, cell)) for cell in range(n_cells)]
        exact_total, rough_total = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        exact_means.append(exact_total / n_cells)
        rough_means.append(rough_total / n_cells)
        ratios.append(exact_total / max(rough_total, 1e-9))
    return CostRatio(n_cells, rounds, statistics.median(exact_means), statistics.median(rough_means),
                     statistics.median(ratios), tuple(ratios))


@dataclass
class RoughDataset:
    """A rough dataset made by :func:`generate_rough_dataset`: its folder, config and recorded label cost."""

    path: Path
    config: GenerateConfig
    cpu_s_per_cell: float | None
    cells_written: int


def generate_rough_dataset(exact_dir: str | Path, out: str | Path, config: GenerateConfig,
                           workers: int | None = None, progress: bool = True, log=None,
                           scheduler: str | None = None) -> RoughDataset:
    """Generate (or resume) the rough dataset ``config`` (from :func:`rough_config`) in ``out`` and check that it
    holds the very cells of ``exact_dir``; raises PhotosslError if any permittivity map differs. ``workers`` /
    ``scheduler``: as :func:`photossl.data.generate_dataset`."""
    from photossl.data.loaders import open_cells

    result = generate_dataset(config, out, workers=workers, progress=progress, log=log, scheduler=scheduler)
    exact, rough = open_cells(exact_dir, ["eps"]), open_cells(out, ["eps"])
    try:
        same = exact["eps"].shape == rough["eps"].shape and np.array_equal(exact["eps"].values, rough["eps"].values)
    finally:
        exact.close()
        rough.close()
    if not same:
        raise PhotosslError(f"the rough dataset {out} does not hold the cells of {exact_dir} (another photossl "
                            "version's cell generator?); delete it to regenerate, or label the exact data again")
    cost = label_cpu_per_cell(out)
    return RoughDataset(Path(out), config, None if cost is None else cost[0], result.cells_written)
