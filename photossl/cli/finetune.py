"""``photossl finetune``: regress the DOS, band gaps or bands from a label budget, from a pretrained encoder, from
scratch (the supervised baseline), or with the classical scikit-learn baseline.

Precedence: built-in defaults < ``--config FILE`` < options given on the command line.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

# option name -> config key
_CONFIG_OPTIONS = (
    "data", "pretrained", "baseline", "label", "target", "polarization", "budget", "seed", "split_seed", "n_test",
    "n_validation", "mode", "head", "head_dims", "encoder", "circular_padding", "exact_symmetry", "epochs", "max_steps", "patience",
    "batch_size", "lr", "encoder_lr_scale", "weight_decay", "schedule", "augment", "device", "threads", "progress",
)


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


@click.command("finetune")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML file of config keys (see photossl.finetune.FinetuneConfig); options override it.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Output folder FT: metrics.json, model.pt (or model.npz), history.csv, indices.json, config.yaml.")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out.")
@click.option("--data", type=click.Path(path_type=Path), help="Dataset folder (photossl generate / import-sibcl).")
@click.option("--pretrained", type=click.Path(path_type=Path),
              help="Pretraining run folder or checkpoint; omit to train the same network from scratch (supervised).")
@click.option("--baseline", type=click.Choice(["none", "ridge", "kernel-ridge"]),
              help="Fit the classical scikit-learn baseline instead of a network [none].")
@click.option("--label", help="Method name recorded in metrics.json [supervised / the run's method / the baseline].")
@click.option("--target", type=click.Choice(["dos_eldiff", "dos", "gaps", "bands"]),
              help="What to regress [dos_eldiff: SIB-CL's DOS minus the empty-lattice DOS, scored on the DOS].")
@click.option("--polarization", type=click.Choice(["tm", "te"]), help="Polarization of the target [tm].")
@click.option("--budget", type=int, help="Number of labelled training cells [50].")
@click.option("--seed", type=int, help="Seed of the label subset, initialisation and data order [0].")
@click.option("--split-seed", type=int, help="Dataset split (the one pretraining used) [0].")
@click.option("--n-test", help="Test cells (count or fraction) when the dataset folder stores no split [0.1].")
@click.option("--n-validation", help="Validation cells (count or fraction) when no split is stored [0.1].")
@click.option("--mode", type=click.Choice(["full", "frozen"]), help="Train encoder and head, or the head only [full].")
@click.option("--head", type=click.Choice(["mlp", "linear"]), help="Regression head [mlp].")
@click.option("--head-dims", help="Hidden sizes of the MLP head, comma-separated [512,512].")
@click.option("--encoder", help="Encoder trained from scratch: small, essl [small].")
@click.option("--circular-padding/--zero-padding", default=None, help="Periodic convolutions [on].")
@click.option("--exact-symmetry/--no-exact-symmetry", default=None,
              help="Network exactly invariant to rotations, mirrors and rolls (bands: equivariant); ~8× cost [off].")
@click.option("--epochs", type=int, help="Maximum epochs [100].")
@click.option("--max-steps",
              help="At most this many optimiser steps: fewer epochs on large budgets; or LABELS:STEPS,... (e.g. "
                   "0:2000,1600:6000), a cap that grows with the budget [no cap].")
@click.option("--patience", type=int, help="Stop after this many epochs without a better validation error, 0 = off "
                                            "[20].")
@click.option("--batch-size", type=int, help="Batch size [16].")
@click.option("--lr", type=float, help="Adam learning rate of the head [1e-3].")
@click.option("--encoder-lr-scale", type=float,
              help="A pretrained encoder's learning rate = lr × this (full mode; a fresh encoder uses lr) [0.1].")
@click.option("--weight-decay", type=float, help="Adam weight decay [1e-5].")
@click.option("--schedule", type=click.Choice(["cosine", "constant"]),
              help="Learning rate: cosine decay to 0 over --epochs, or constant [cosine].")
@click.option("--augment", help="Invariance augmentations, comma-separated (translate, flip, rot4, d4, "
                                "half_translate) or none [translate,d4].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="auto: CUDA when present [auto].")
@click.option("--threads", type=int, help="CPU threads for torch.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [on].")
@click.pass_context
def finetune(ctx: click.Context, config_file: Path | None, out_dir: Path, overwrite: bool, **options) -> None:
    """Fine-tune on a label budget; select on validation, score the test split once; write FT/metrics.json.

    Example: photossl finetune --data DIR --pretrained RUN --budget 50 --seed 0 --out FT
    """
    from photossl.config import read_yaml
    from photossl.finetune import finetune as run_finetune
    from photossl.finetune import make_finetune_config

    passed = {}
    for name in _CONFIG_OPTIONS:
        if ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        value = options[name]
        if name in ("n_test", "n_validation"):
            value = count_or_fraction(value, f"--{name.replace('_', '-')}")
        elif name == "augment":
            value = _names(value)
        elif name == "head_dims":
            value = _ints(value, "--head-dims")
        elif name == "max_steps":
            value = _step_cap(value)
        elif isinstance(value, Path):
            value = str(value)
        passed[name] = value
    from photossl.config import resolve_config_file

    values = {**(read_yaml(resolve_config_file(config_file)) if config_file is not None else {}), **passed}
    config = make_finetune_config(values)
    record = run_finetune(config, out_dir, overwrite=overwrite, echo=lambda m: click.echo(m, err=True))
    metric = record["metric"]
    click.echo(f"{record['method']}: test {metric} = {record[metric]:.4g} with {record['budget']} labels "
               f"(selected epoch {record['selected_epoch']}); wrote {out_dir / 'metrics.json'}")
