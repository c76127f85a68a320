"""Load the encoder of any run (pretraining or fine-tuning) and pick cells of a dataset split, for diagnostics and
figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from photossl.errors import PhotosslError


@dataclass
class LoadedEncoder:
    """An encoder in eval mode, with E-SSL's prediction head and its group when the run trained one."""

    name: str
    encoder: torch.nn.Module
    predictor: torch.nn.Module | None = None
    predict_group: str | None = None
    relative: bool = False  # the head reads (f(x), f(g·x)) pairs (relative E-SSL)
    embed: torch.nn.Module | None = None  # encoder + projector, for known-group CARE's diagnostics
    representation: object | None = None  # its prescribed ρ (photossl.symmetry.representations.Representation)


def load_encoder(path: str | Path, name: str | None = None) -> LoadedEncoder:
    """The encoder of a pretraining run folder / checkpoint, or of a fine-tuning folder FT (``model.pt``)."""
    from photossl.finetune import MODEL_FILE, load_finetuned
    from photossl.training import build_model, make_config
    from photossl.training.checkpoint import CHECKPOINT_NAME, load_checkpoint

    path = Path(path)
    if not path.exists():
        raise PhotosslError(f"no run at {path}")
    name = name or (path.name if path.is_dir() else path.parent.name)
    if path.is_dir():
        pretraining = (path / CHECKPOINT_NAME).exists()
    else:  # fine-tuned models (a pickled model.pkl too, which load_finetuned refuses); else a pretraining checkpoint
        pretraining = path.name not in (MODEL_FILE, "model.npz", "model.pkl")
    if pretraining:
        payload = load_checkpoint(path)
        config = make_config(payload["config"])
        model = build_model(config, int(payload["in_channels"]))
        model.load_state_dict(payload["model"])
        model.eval()
        group = None
        if model.predictor is not None and config.track == "photonics":
            group = config.symmetry_policy().predict
        loaded = LoadedEncoder(name, model.encoder, model.predictor, group, config.spec.relative)
        if config.spec.known_group and config.track == "photonics":
            from photossl.symmetry.representations import block_representation
            from photossl.training.methods import predicted_group

            loaded.embed = torch.nn.Sequential(model.encoder, model.projector).eval()
            loaded.representation = block_representation(predicted_group(config), model.representation.shape[-1])
        return loaded
    model = load_finetuned(path)
    if model.encoder is None:
        raise PhotosslError(f"{path} holds a classical baseline, which has no encoder")
    return LoadedEncoder(name, model.encoder.eval())


def split_cells(data: str | Path, split: str = "test", n: int | None = None, split_seed: int = 0) -> np.ndarray:
    """Sorted global indices of the first ``n`` cells of a split part ('test', 'validation', 'labelled', 'pretrain'
    or 'all') of the dataset folder ``data`` (its stored split, else the default one)."""
    from photossl.data.loaders import open_cells
    from photossl.finetune import resolve_splits

    dataset = open_cells(data, ["eps"])
    try:
        n_cells = int(dataset.sizes["cell"])
    finally:
        dataset.close()
    if split == "all":
        cells = np.arange(n_cells)
    else:
        splits = resolve_splits(data, n_cells, split_seed)
        if split not in ("test", "validation", "labelled", "pretrain"):
            raise PhotosslError(f"split must be test, validation, labelled, pretrain or all; got '{split}'")
        cells = getattr(splits, split)
    cells = np.asarray(cells)[: n if n is not None else None]
    if cells.size == 0:
        raise PhotosslError(f"the {split} split of {data} has no cells")
    return np.sort(cells)
