"""Regression targets: where each lives in a dataset, how it is scored, and how a prediction is written out.

- 'dos_eldiff' (SIB-CL's target, DOS / √ε̄ − 2πω on the scaled frequency axis): scored as SIB-CL does, on the
  DOS, after adding the empty-lattice DOS 2πω back to prediction and truth (bins 100..399).
- 'dos' (DOS / √ε̄): the same metric directly.
- 'gaps' (every band pair: lower edge, upper edge, gap-to-midgap ratio): mean absolute error and the pooled relative
  error (cells without a gap have ratio 0, so per-cell relative errors would divide by 0).
- 'bands' (all bands on the k-grid): mean absolute error and the per-cell relative L1 error.
The first metric listed for a target (:data:`PRIMARY_METRIC`) selects models on the validation split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from photossl.errors import PhotosslError

PRIMARY_METRIC = {"dos_eldiff": "dos_rel_l1", "dos": "dos_rel_l1", "gaps": "gaps_mae", "bands": "bands_rel_l1"}
# Name of each target under the symmetry module's target actions (photossl.symmetry.targets).
SYMMETRY_NAME = {"dos_eldiff": "dos_eldiff", "dos": "dos", "gaps": "gaps", "bands": "bands"}


@dataclass
class TargetInfo:
    """A target's dataset variable, per-cell shape, dims and coordinates, and the DOS offset for 'dos_eldiff'.

    ``offset`` (F,): the empty-lattice DOS 2πω added to a 'dos_eldiff' value to give the DOS; None otherwise.
    ``kpoints`` (K, 2): the k-grid of a 'bands' target (needed to permute it under rotations and mirrors).
    ``coords``: per-cell-dimension coordinates to write next to predictions.
    """

    name: str
    variable: str
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    attrs: dict = field(default_factory=dict)
    coords: dict = field(default_factory=dict)
    offset: np.ndarray | None = None
    kpoints: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.name]

    def as_record(self) -> dict[str, Any]:
        """Plain values (for a model file): rebuilt by :meth:`from_record`."""
        return {
            "name": self.name, "variable": self.variable, "shape": list(self.shape), "dims": list(self.dims),
            "attrs": {k: v for k, v in self.attrs.items() if isinstance(v, (str, int, float))},
            "coords": {k: np.asarray(v).tolist() for k, v in self.coords.items()},
            "offset": None if self.offset is None else np.asarray(self.offset).tolist(),
            "kpoints": None if self.kpoints is None else np.asarray(self.kpoints).tolist(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TargetInfo:
        return cls(
            record["name"], record["variable"], tuple(record["shape"]), tuple(record["dims"]), dict(record["attrs"]),
            {k: np.asarray(v) for k, v in record["coords"].items()},
            None if record["offset"] is None else np.asarray(record["offset"], dtype=np.float64),
            None if record["kpoints"] is None else np.asarray(record["kpoints"], dtype=np.float64),
        )


def choose_variable(names, target: str, polarization: str) -> str:
    """The variable holding ``target`` among ``names``: ``<target>_<pol>`` (``dos_tm``, ``gaps_te``, ...), or for the
    DOS the bare ``dos`` / ``dos_eldiff`` of a dataset that stores no per-polarization DOS at all (the bare copy is
    the first polarization's, so it is not taken for a polarization the dataset lacks)."""
    if target not in PRIMARY_METRIC:
        raise PhotosslError(f"unknown target '{target}' (allowed: {', '.join(PRIMARY_METRIC)})")
    names = set(map(str, names))
    wanted = f"{target}_{polarization}"
    if wanted in names:
        return wanted
    polarized = any(f"{target}_{pol}" in names for pol in ("tm", "te"))
    if target in ("dos", "dos_eldiff") and target in names and not polarized:
        return target
    available = sorted(n for n in names if n.split("_")[0] in ("dos", "gaps", "bands"))
    raise PhotosslError(
        f"the dataset has no {polarization.upper()} '{target}' target ({wanted}); "
        f"it has: {', '.join(available) or 'no targets'}"
    )


def target_variable(dataset: xr.Dataset, target: str, polarization: str) -> str:
    """The variable of ``target`` in ``dataset`` (see :func:`choose_variable`)."""
    return choose_variable(dataset.variables, target, polarization)


def target_info(dataset: xr.Dataset, target: str, polarization: str = "tm") -> TargetInfo:
    """The :class:`TargetInfo` of ``target`` in ``dataset`` (which must hold its variable and coordinates)."""
    from photossl.physics.dos import empty_lattice_dos

    variable = target_variable(dataset, target, polarization)
    array = dataset[variable]
    dims = tuple(array.dims[1:])
    coords = {d: dataset[d].values for d in dims if d in dataset.coords}
    offset = kpoints = None
    if target in ("dos", "dos_eldiff"):
        if "freq" not in dataset.coords or dataset.sizes.get("freq") != array.shape[-1]:
            raise PhotosslError(f"target '{variable}' needs the dataset's 'freq' coordinate")
        freq = np.asarray(dataset["freq"].values, dtype=np.float64)
        coords["freq"] = freq
        if target == "dos_eldiff":
            offset = empty_lattice_dos(freq)
    if target == "bands":
        if "k_x" not in dataset.coords or "k_y" not in dataset.coords:
            raise PhotosslError(f"target '{variable}' needs the dataset's k_x and k_y coordinates")
        kpoints = np.stack([dataset["k_x"].values, dataset["k_y"].values], axis=1).astype(np.float64)
        coords["k_x"], coords["k_y"] = kpoints[:, 0], kpoints[:, 1]
    return TargetInfo(target, variable, tuple(array.shape[1:]), dims, dict(array.attrs), coords, offset, kpoints)


def score(info: TargetInfo, pred: Any, true: Any) -> dict[str, float]:
    """The target's metrics (primary first) of predictions against truth, both (B, *info.shape) in target units."""
    from photossl.evaluation.metrics import (
        DOS_STOP,
        dos_relative_l1,
        mean_absolute_error,
        pooled_relative_error,
        relative_l1,
    )

    pred = np.asarray(pred, dtype=np.float64).reshape(-1, *info.shape)
    true = np.asarray(true, dtype=np.float64).reshape(-1, *info.shape)
    if pred.shape != true.shape:
        raise PhotosslError(f"predictions {pred.shape} and targets {true.shape} differ in shape")
    if info.name in ("dos", "dos_eldiff"):
        mae = mean_absolute_error(pred, true)
        if info.offset is not None:
            pred, true = pred + info.offset, true + info.offset
        if pred.shape[-1] >= DOS_STOP:
            rel = dos_relative_l1(pred, true)
        else:  # a short frequency axis: score every bin
            rel = relative_l1(pred, true)
        return {"dos_rel_l1": rel, f"{info.name}_mae": mae}
    if info.name == "gaps":
        return {"gaps_mae": mean_absolute_error(pred, true), "gaps_rel": pooled_relative_error(pred, true)}
    return {"bands_rel_l1": relative_l1(pred, true), "bands_mae": mean_absolute_error(pred, true)}


def with_dos(info: TargetInfo, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Named output arrays of a prediction (B, *shape): a 'dos_eldiff' prediction also gives the DOS itself."""
    if info.name == "dos_eldiff":
        return {"dos_eldiff": pred, "dos": pred + info.offset}
    return {info.name: pred}
