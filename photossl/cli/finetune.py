"""``photossl finetune``: regress the DOS, band gaps or bands from a label budget, from a pretrained encoder, from
scratch (the supervised baseline), or with the classical scikit-learn baseline.

Precedence: built-in defaults < ``--config FILE`` < options given on the command line.
"""

from __future__ import annotations

from pathlib import Path

import click

from photossl.cli.console import status_logger
from photossl.cli.options import ConfigOptions, config_module, format_default


def count_or_fraction(text: str, name: str) -> int | float:
    """'2000' -> 2000 cells; '0.1' -> a tenth of the cells."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(f"must be a count or a fraction, got '{text}'", param_hint=name) from None


def _names(text: str) -> list[str]:
    return [] if text.strip().lower() in ("none", "") else [p.strip() for p in text.split(",") if p.strip()]


def _ints(text: str, name: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise click.BadParameter(f"must be comma-separated integers, got '{text}'", param_hint=name) from None


def _step_cap(text: str) -> int | dict[int, int]:
    """'2000' -> 2000 steps; '0:2000,1600:6000' -> {0: 2000, 1600: 6000} (steps by label budget)."""
    try:
        if ":" not in text:
            return int(text)
        pairs = [p.split(":") for p in text.split(",") if p.strip()]
        return {int(labels): int(steps) for labels, steps in pairs}
    except ValueError:
        raise click.BadParameter(f"must be a number of steps or LABELS:STEPS pairs separated by commas, got '{text}'",
                                 param_hint="--max-steps") from None


CONFIG = ConfigOptions("photossl.finetune.config", "FinetuneConfig")
PATH = click.Path(path_type=Path)


def _split_size_default(name: str) -> str:
    """make_splits' default for a split size the config leaves unset (None)."""
    import inspect

    default = inspect.signature(config_module("photossl.data.splits").make_splits).parameters[name].default
    return format_default(default)


@click.command("finetune")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML file of config keys (see photossl.finetune.FinetuneConfig); options override it.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Output folder FT: metrics.json, model.pt (or model.npz), history.csv, indices.json, config.yaml.")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out.")
@CONFIG.option("data", "Dataset folder (photossl generate / import-sibcl).", type=PATH)
@CONFIG.option("pretrained", "Pretraining run folder or checkpoint; omit to train the same network from scratch "
                             "(supervised).", type=PATH)
@CONFIG.option("baseline", "Fit the classical scikit-learn baseline instead of a network.")
@CONFIG.option("label", "Method name recorded in metrics.json.",
               default_text="supervised / the run's method / the baseline")
@CONFIG.option("target", "What to regress [{default}: SIB-CL's DOS minus the empty-lattice DOS, scored on the DOS].")
@CONFIG.option("polarization", "Polarization of the target.", choices=("tm", "te"))
@CONFIG.option("budget", "Number of labelled training cells.")
@CONFIG.option("seed", "Seed of the label subset, initialisation and data order.")
@CONFIG.option("split_seed", "Dataset split (the one pretraining used).")
@CONFIG.option("n_test", "Test cells (count or fraction) when the dataset folder stores no split.",
               parse=lambda text: count_or_fraction(text, "--n-test"), default_text=_split_size_default("n_test"))
@CONFIG.option("n_validation", "Validation cells (count or fraction) when no split is stored.",
               parse=lambda text: count_or_fraction(text, "--n-validation"),
               default_text=_split_size_default("n_validation"))
@CONFIG.option("mode", "Train encoder and head, or the head only.")
@CONFIG.option("head", "Regression head.")
@CONFIG.option("head_dims", "Hidden sizes of the MLP head, comma-separated.",
               parse=lambda text: _ints(text, "--head-dims"))
@CONFIG.option("encoder", "Encoder trained from scratch: small, essl, p4m (group convolutions, exactly D4-invariant).")
@CONFIG.option("circular_padding", "Periodic convolutions.", "--circular-padding/--zero-padding")
@CONFIG.option("exact_symmetry", "Network exactly invariant to rotations, mirrors and rolls (bands: equivariant); "
                                 "~8× cost.")
@CONFIG.option("epochs", "Maximum epochs.")
@CONFIG.option("max_steps", "At most this many optimiser steps: fewer epochs on large budgets; or LABELS:STEPS,... "
                            "(e.g. 0:2000,1600:6000), a cap that grows with the budget.",
               parse=_step_cap, default_text="no cap")
@CONFIG.option("patience", "Stop after this many epochs without a better validation error, 0 = off.")
@CONFIG.option("batch_size", "Batch size.")
@CONFIG.option("lr", "Adam learning rate of the head.")
@CONFIG.option("encoder_lr_scale", "A pretrained encoder's learning rate = lr × this (full mode; a fresh encoder "
                                   "uses lr).")
@CONFIG.option("weight_decay", "Adam weight decay.")
@CONFIG.option("schedule", "Learning rate: cosine decay to 0 over --epochs, or constant.")
@CONFIG.option("augment", "Invariance augmentations, comma-separated (translate, flip, rot4, d4, half_translate) or "
                          "none.", parse=_names)
@CONFIG.option("device", "auto: CUDA when present.")
@CONFIG.option("threads", "CPU threads for torch.")
@CONFIG.option("progress", "Progress bar.")
@click.pass_context
def finetune(ctx: click.Context, config_file: Path | None, out_dir: Path, overwrite: bool, **options) -> None:
    """Fine-tune on a label budget; select on validation, score the test split once; write FT/metrics.json.

    Example: photossl finetune --data DIR --pretrained RUN --budget 50 --seed 0 --out FT
    """
    from photossl.config import read_yaml, resolve_config_file
    from photossl.finetune import finetune as run_finetune
    from photossl.finetune import make_finetune_config

    from_file = read_yaml(resolve_config_file(config_file)) if config_file is not None else {}
    config = make_finetune_config(CONFIG.merge(ctx, from_file))
    record = run_finetune(config, out_dir, overwrite=overwrite, echo=status_logger())
    metric = record["metric"]
    click.echo(f"{record['method']}: test {metric} = {record[metric]:.4g} with {record['budget']} labels "
               f"(selected epoch {record['selected_epoch']}); wrote {out_dir / 'metrics.json'}")
