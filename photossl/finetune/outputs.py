"""The files of a fine-tuning run folder FT: ``metrics.json`` (written last: its presence marks a finished run),
``history.csv``, ``indices.json``, ``config.yaml``, and the network's ``model.pt``, which
:func:`photossl.finetune.load_finetuned` reads back. While a network trains, ``resume.pt`` holds its latest saved
epoch (:mod:`photossl.finetune.resume`); it is removed once ``metrics.json`` is written."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.files import atomic_torch_save, replace_atomically, write_json_record, write_yaml_record
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.data import FinetuneData
from photossl.finetune.network import Regressor
from photossl.finetune.scaling import TargetScaler
from photossl.provenance import software_versions

MODEL_FORMAT = "photossl-finetuned"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.json"


def write_history(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(rows[0])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(rows)

    replace_atomically(path, write)


def refuse_finished(out: Path, overwrite: bool) -> None:
    if (out / METRICS_FILE).exists() and not overwrite:
        raise PhotosslError(f"{out} already holds a finished fine-tuning run; choose another --out or pass --overwrite")


def prepare_output(out: str | Path, overwrite: bool) -> Path:
    """Create ``out``; refuse a finished run there unless ``overwrite``, whose model and metrics are then removed."""
    out = Path(out)
    refuse_finished(out, overwrite)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PhotosslError(f"cannot create {out}: {err.strerror or err}") from None
    for name in (METRICS_FILE, MODEL_FILE, "model.npz", "model.pkl"):  # never leave an old model next to new metrics
        if (out / name).exists():
            (out / name).unlink()
    return out


def complete_run(config: FinetuneConfig, data: FinetuneData, record: dict[str, Any], out: Path,
                 wall_time_s: float) -> dict[str, Any]:
    """Add the run's provenance to ``record`` and write indices.json, config.yaml and, last, metrics.json."""
    record.update(
        budget=config.budget, seed=config.seed, split_seed=data.splits.seed, target=config.target,
        target_variable=data.target.variable, n_train=int(len(data.train_indices)),
        n_validation=int(len(data.splits.validation)), n_test=int(len(data.splits.test)),
        seeds={"budget": config.seed, "init": config.seed, "split": data.splits.seed},
        data=str(data.path), versions=software_versions("scikit-learn"), threads=torch.get_num_threads(),
        wall_time_s=round(wall_time_s, 3),
    )
    write_json_record(out / "indices.json", data.indices_record())
    write_yaml_record(out / "config.yaml", config_to_dict(config))
    write_json_record(out / METRICS_FILE, record)  # last: its presence marks a finished run
    return record


def save_network(path: Path, config: FinetuneConfig, data: FinetuneData, model: Regressor, spec: dict[str, Any],
                 scaler: TargetScaler, method: str) -> None:
    """Write the network ``model.pt``: encoder spec, head, weights, target scaling and what the inputs were."""
    target = data.target
    atomic_torch_save(
        {
            "format": MODEL_FORMAT,
            "kind": "network",
            "encoder": spec,
            "head": {"kind": config.head, "in_dim": model.encoder.feature_dim, "out_dim": target.size,
                     "dims": list(config.head_dims)},
            "state": model.state_dict(),
            "target_mean": scaler.mean.cpu(),
            "target_scale": scaler.scale,
            "target": target.as_record(),
            "normalisation": list(data.normalisation),
            "image_size": data.image_size,
            "eps_range": list(data.eps_range()),
            "method": method,
            "config": config_to_dict(config),
        },
        path,
    )
