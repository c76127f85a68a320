"""Continuing a pretraining run: which checkpoint a call starts from, and which config values may change on resume
(:data:`~photossl.training.config.RESUMABLE_OVERRIDES`: they steer execution, not what is learnt)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from photossl.config import config_to_dict
from photossl.errors import PhotosslError
from photossl.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from photossl.training.config import RESUMABLE_OVERRIDES, PretrainConfig, make_config, resolve_defaults


def resume_config(saved: PretrainConfig, requested: dict[str, Any]) -> PretrainConfig:
    """The config to continue a run with: the saved one, with ``requested`` values applied to the fields that
    may change on resume (:data:`RESUMABLE_OVERRIDES`); any other requested value must equal the saved one."""
    saved_values = config_to_dict(saved)
    changes = {}
    for key, value in requested.items():
        key = key.replace("-", "_")
        if key in RESUMABLE_OVERRIDES:
            changes[key] = value
            continue
        probe = config_to_dict(resolve_defaults(make_config({**saved_values, key: value})))[key]
        if probe != saved_values.get(key):
            raise PhotosslError(
                f"cannot resume with {key} = {value!r}: the run was started with {saved_values.get(key)!r} "
                f"(only {', '.join(sorted(RESUMABLE_OVERRIDES))} may change)"
            )
    return make_config({**saved_values, **changes})


def checkpoint_to_resume(out: Path, config: PretrainConfig, resume: bool) -> dict[str, Any] | None:
    """The checkpoint in ``out`` that a (resolved) ``config`` continues, or None for a fresh run; a run already in
    ``out`` without ``resume``, or one whose config differs beyond the resumable fields, raises PhotosslError."""
    path = out / CHECKPOINT_NAME
    if not path.exists():
        return None
    if not resume:
        raise PhotosslError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    checkpoint = load_checkpoint(path)
    saved = make_config(checkpoint["config"])
    for key in set(config_to_dict(saved)) - RESUMABLE_OVERRIDES:
        if getattr(saved, key) != getattr(config, key):
            raise PhotosslError(f"cannot resume: config key '{key}' differs from the run's ({getattr(saved, key)!r})")
    return checkpoint
