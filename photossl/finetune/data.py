"""The cells a fine-tuning run reads: its split, its label budget, and the arrays of each part.

The split is the one stored in the dataset folder (``DIR/splits-seed<S>.json``, also read by ``photossl pretrain``)
or, when none is stored, :func:`photossl.data.make_splits` with the configured sizes. Training cells are
:func:`photossl.data.budget_indices` of the labelled pool: nested across budgets, independent across seeds, and
disjoint from validation and test by construction. Test arrays are loaded by a separate call, made once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from photossl.data.loaders import EPS_NORMALISATION, load_arrays, open_cells
from photossl.data.splits import DatasetSplits, budget_indices, load_splits, make_splits, splits_path
from photossl.errors import PhotosslError
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.targets import TargetInfo, choose_variable, target_info


def variable_names(path: Path) -> list[str]:
    """Names of the variables of a dataset folder (from its first chunk) or of one NetCDF file, read with h5py
    (opening the file with xarray would cost far more than the names)."""
    import h5py

    from photossl.data.storage import CHUNK_DIR, read_manifests

    if path.is_dir():
        files = [path / CHUNK_DIR / name for m in read_manifests(path).values() for name in m["chunks"]]
        if not files:
            raise PhotosslError(f"{path} is not a photossl dataset with chunks (make one with photossl generate)")
        path = sorted(files)[0]
    try:
        with h5py.File(path, "r") as handle:
            return [str(name) for name in handle.keys()]
    except OSError as err:
        raise PhotosslError(f"cannot read {path}: {err}") from None


def open_target_dataset(path: str | Path, config: FinetuneConfig):
    """The dataset with only the permittivity and the target's variable loaded (a 20k-cell set holds ~1 GB of group
    velocities that fine-tuning never reads)."""
    path = Path(path)
    if not path.exists():
        raise PhotosslError(f"dataset not found: {path}")
    name = choose_variable(variable_names(path), config.target, config.polarization)
    return open_cells(path, ["eps", name])


def resolve_splits(path: str | Path, n_cells: int, seed: int, n_test=None, n_validation=None) -> DatasetSplits:
    """The stored split of ``seed`` in dataset folder ``path`` if there is one, else a fresh one (nothing written).

    Sizes given together with a stored split must match it: a changed request never silently reuses an old file.
    """
    sizes = {k: v for k, v in (("n_test", n_test), ("n_validation", n_validation)) if v is not None}
    stored = splits_path(path, seed) if Path(path).is_dir() else None
    if stored is not None and stored.exists():
        splits = load_splits(stored, seed)
        if splits.n_cells not in (None, n_cells):
            raise PhotosslError(f"{stored} was made for {splits.n_cells} cells, the dataset has {n_cells}")
        if sizes:
            wanted = make_splits(n_cells, seed, **sizes)
            if (len(wanted.test), len(wanted.validation)) != (len(splits.test), len(splits.validation)):
                raise PhotosslError(
                    f"{stored} holds a split with {len(splits.test)} test and {len(splits.validation)} validation "
                    f"cells, not the requested {len(wanted.test)} and {len(wanted.validation)}; drop n_test / "
                    "n_validation to use it"
                )
        return splits
    return make_splits(n_cells, seed, **sizes)


@dataclass
class Part:
    """Cells of one split part: global indices (B,), normalised images (B, 1, N, N), raw targets (B, *shape)."""

    indices: np.ndarray
    images: torch.Tensor
    targets: torch.Tensor
    raw_eps: torch.Tensor | None = None


class FinetuneData:
    """Split, target description and train / validation arrays of a config; :meth:`test` reads the test cells.

    ``dataset``: the config's dataset already opened (by :func:`open_target_dataset`), to share between runs; it is
    then left open by :meth:`close`.
    """

    def __init__(self, config: FinetuneConfig, keep_raw_eps: bool = False, dataset=None):
        if config.data is None:
            raise PhotosslError("fine-tuning needs a dataset: pass --data DIR (a folder written by photossl generate)")
        self.path = Path(config.data)
        self.config = config
        self.keep_raw_eps = keep_raw_eps
        self._owned = dataset is None
        self._dataset = open_target_dataset(self.path, config) if dataset is None else dataset
        self.n_cells = int(self._dataset.sizes["cell"])
        self.target: TargetInfo = target_info(self._dataset, config.target, config.polarization)
        self.splits = resolve_splits(self.path, self.n_cells, config.split_seed, config.n_test, config.n_validation)
        self.train_indices = budget_indices(self.splits, config.budget, config.seed)
        if len(self.splits.validation) < 1:
            raise PhotosslError("the split has no validation cells: model selection needs some (n_validation > 0)")
        self.image_size = int(self._dataset["eps"].shape[-1])
        self._test_read = False

    def _part(self, indices: np.ndarray) -> Part:
        images, targets = load_arrays(self._dataset, self.target.variable, indices)
        raw = load_arrays(self._dataset, None, indices, normalise=False)[0] if self.keep_raw_eps else None
        return Part(np.asarray(indices), images, targets, raw)

    def train(self) -> Part:
        return self._part(self.train_indices)

    def validation(self) -> Part:
        return self._part(self.splits.validation)

    def test(self) -> Part:
        """The test cells; may be read once per run (the protocol: touched once, at the end)."""
        if self._test_read:
            raise PhotosslError("the test split was already read in this run")
        if len(self.splits.test) < 1:
            raise PhotosslError("the split has no test cells (n_test > 0 needed)")
        self._test_read = True
        return self._part(self.splits.test)

    def indices_record(self) -> dict:
        return {
            "split_seed": self.splits.seed,
            "budget_seed": self.config.seed,
            "budget": self.config.budget,
            "split_sizes": self.splits.sizes,
            "train": [int(i) for i in self.train_indices],
            "validation": [int(i) for i in self.splits.validation],
            "test": [int(i) for i in self.splits.test],
        }

    def pretraining_overlap(self, pretrain_config) -> int | None:
        """How many of this run's validation and test cells were in the pretraining pool of ``pretrain_config``
        (None when it pretrained on another dataset)."""
        data = getattr(pretrain_config, "data", None)
        if data is None or not Path(data).exists() or Path(data).resolve() != self.path.resolve():
            return None
        pool = resolve_splits(self.path, self.n_cells, pretrain_config.split_seed).pretrain
        held_out = np.concatenate([self.splits.validation, self.splits.test])
        return int(np.intersect1d(pool, held_out).size)

    def close(self) -> None:
        if self._owned:
            self._dataset.close()

    @property
    def normalisation(self) -> tuple[float, float]:
        return EPS_NORMALISATION

    def eps_range(self) -> tuple[float, float]:
        """(min, max) raw ε over the dataset's cells: the distribution the model was trained on."""
        eps = self._dataset["eps"]
        return float(eps.min()), float(eps.max())
