"""The encoder a fine-tuning run starts from: a fresh one (seeded), a pretraining run's, or a fine-tuned network's
(e.g. one trained on rough labels), and what the run's record says about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from photossl.errors import PhotosslError
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.data import FinetuneData
from photossl.finetune.network import encoder_spec
from photossl.finetune.outputs import MODEL_FILE
from photossl.finetune.predict import FinetunedModel, load_finetuned
from photossl.models import ExactSymmetryEncoder, build_encoder, is_exactly_symmetric
from photossl.runtime import seeded
from photossl.training import load_pretrained

INIT_STREAM = 0xF17E  # the fresh encoder's initialisation; INIT_STREAM + 1 is the head's


def _exact_symmetry(encoder: nn.Module, spec: dict[str, Any], wanted: bool) -> tuple[nn.Module, dict[str, Any]]:
    """A loaded encoder wrapped for exact symmetry when ``wanted`` (same weights); one that already is exactly
    symmetric stays so. The spec records it, so that the saved model is rebuilt the same way."""
    if wanted and not is_exactly_symmetric(encoder):  # a 'p4m' encoder already is
        encoder = ExactSymmetryEncoder(encoder)
    if isinstance(encoder, ExactSymmetryEncoder):
        spec["kwargs"]["exact_symmetry"] = True
    return encoder, spec


def is_finetuned_run(path: str | Path) -> bool:
    """Whether ``path`` is a fine-tuning run folder (its ``model.pt``) or such a file, not a pretraining run."""
    path = Path(path)
    return (path / MODEL_FILE).exists() if path.is_dir() else path.name == MODEL_FILE


def start_encoder(config: FinetuneConfig, in_channels: int):
    """(encoder, spec, method label, pretraining config or None): pretrained weights or a freshly initialised one.

    A fine-tuned network as ``pretrained`` (e.g. one trained on rough labels) gives its encoder, and the
    :class:`~photossl.finetune.predict.FinetunedModel` itself in place of the pretraining config.
    """
    if config.pretrained is None:
        spec = encoder_spec(config.encoder, in_channels, config.circular_padding, config.exact_symmetry)
        with seeded(INIT_STREAM, config.seed):  # without touching the caller's RNG
            encoder = build_encoder(spec["name"], **spec["kwargs"])
        return encoder, spec, "supervised", None
    if is_finetuned_run(config.pretrained):
        start = load_finetuned(config.pretrained)
        if start.network is None:
            raise PhotosslError(f"{config.pretrained} holds a classical baseline, which has no encoder to start from")
        spec = encoder_spec(start.config["encoder"], in_channels, start.config["circular_padding"])
        for parameter in start.network.encoder.parameters():  # a frozen-mode run left them fixed
            parameter.requires_grad_(True)
        encoder, spec = _exact_symmetry(start.network.encoder, spec, config.exact_symmetry)
        return encoder, spec, start.method, start
    encoder, pretrain_config = load_pretrained(config.pretrained)
    if pretrain_config.track != "photonics":
        raise PhotosslError(f"{config.pretrained} was pretrained on the {pretrain_config.track} track, not photonics")
    spec = encoder_spec(pretrain_config.encoder, in_channels, pretrain_config.circular_padding)
    # A run pretrained with exact symmetry keeps it; a plain one gains it on request.
    encoder, spec = _exact_symmetry(encoder, spec, config.exact_symmetry)
    return encoder, spec, pretrain_config.method, pretrain_config


def _finetuned_record(config: FinetuneConfig, start: FinetunedModel, data: FinetuneData, echo) -> dict[str, Any]:
    """The record of a fine-tuned network that this run starts from; warns when it trained on held-out cells.

    Its head (and target scaling) is reused when it regressed the same target with the same head."""
    trained_on = None
    indices = start.path / "indices.json"
    if indices.exists():
        trained_on = np.asarray(json.loads(indices.read_text())["train"], dtype=np.int64)
    overlap = None
    if trained_on is not None:
        held_out = np.concatenate([data.splits.validation, data.splits.test])
        overlap = int(np.intersect1d(trained_on, held_out).size)
        if overlap:
            echo(f"warning: {overlap} validation/test cells were among the {len(trained_on)} training cells of "
                 f"{config.pretrained}")
    same_head = (start.target.name == data.target.name and start.target.size == data.target.size
                 and start.config.get("head") == config.head
                 and list(start.config.get("head_dims", [])) == list(config.head_dims))
    return {"run": str(config.pretrained), "method": start.method, "kind": "finetuned",
            "epochs": start.config.get("epochs"), "encoder": start.config.get("encoder"),
            "data": start.config.get("data"), "seed": start.config.get("seed"),
            "target_variable": start.target.variable, "head_reused": bool(same_head),
            "held_out_cells_in_pretraining_pool": overlap}


def start_record(config: FinetuneConfig, start, data: FinetuneData, echo) -> dict[str, Any] | None:
    """What the run's record says about ``start`` (the third value of :func:`start_encoder`), None for a fresh
    encoder; warns when validation or test cells were among the cells it learnt from."""
    if start is None:
        return None
    if isinstance(start, FinetunedModel):
        return _finetuned_record(config, start, data, echo)
    overlap = data.pretraining_overlap(start)
    record = {"run": str(config.pretrained), "method": start.method, "epochs": start.epochs,
              "encoder": start.encoder, "data": start.data, "seed": start.seed,
              "held_out_cells_in_pretraining_pool": overlap}
    if overlap:
        echo(f"warning: {overlap} validation/test cells were in the pretraining pool of {config.pretrained} "
             "(unlabelled); store the split in the dataset folder before pretraining to keep them out")
    return record
