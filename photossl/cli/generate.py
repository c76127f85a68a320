"""``photossl generate``: make (or resume) a labelled dataset of unit cells, optionally as one shard of many."""

from __future__ import annotations

from pathlib import Path

import click

from photossl.cli.console import status_logger
from photossl.cli.options import ConfigOptions

CONFIG = ConfigOptions("photossl.data.generate_config", "GenerateConfig")
PRESET_NAMES = tuple(CONFIG.module.PRESETS)


def _pair(text: str | None, name: str):
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"must be two numbers 'LOW,HIGH', got '{text}'", param_hint=name) from None
    return (low, high)


def _names(text: str | None):
    if text is None:
        return None
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def _targets(text: str):
    names = _names(text)
    return [] if names == ["none"] else names


def _solver_options(pairs: tuple[str, ...]) -> dict:
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got '{pair}'", param_hint="--solver-option")
        options[key.strip()] = yaml.safe_load(value)
    return options


@click.command("generate")
@CONFIG.option("preset", "Recipe to start from (default {default}); the options below override it.",
               choices=PRESET_NAMES)
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML file of generate-config keys, applied over the preset and under the options.")
@CONFIG.option("n_cells", "Number of cells.")
@CONFIG.option("seed", "Dataset seed; cell i depends only on (seed, i).")
@CONFIG.option("chunk_size", "Cells per chunk file (the unit of resume and work).")
@CONFIG.option("cell", "Cell generator (set by the preset).", show_default=False)
@CONFIG.option("group", "Plane group of level-set cells, e.g. p1, pm, p4m (set by the preset).", show_default=False)
@CONFIG.option("size", "Pixels per cell side.")
@CONFIG.option("max_order", "Max Fourier order of level-set cells.")
@CONFIG.option("eps_in_range", "eps_in ~ U(LOW, HIGH), as 'LOW,HIGH'.", parse=lambda t: _pair(t, "--eps-in-range"))
@CONFIG.option("eps_out_range", "eps_out ~ U(LOW, HIGH), as 'LOW,HIGH'.",
               parse=lambda t: _pair(t, "--eps-out-range"))
@CONFIG.option("filling_range", "Filling ~ U(LOW, HIGH) of level-set cells.",
               parse=lambda t: _pair(t, "--filling-range"))
@CONFIG.option("radius_range", "Radius ~ U(LOW, HIGH) of cylinder cells.", parse=lambda t: _pair(t, "--radius-range"))
@CONFIG.option("polarizations", "Comma-separated: {choices} [{default}]. The first one also fills 'dos'.",
               parse=_names)
@CONFIG.option("grid_size", "k-grid points per axis (SIB-CL grid).")
@CONFIG.option("n_bands", "Number of bands.")
@CONFIG.option("targets", "Comma-separated labels: {choices} [{default}]; 'none' for cells only.", parse=_targets)
@CONFIG.option("use_symmetry", "Solve only symmetry-inequivalent k-points.", "--symmetry/--no-symmetry")
@CONFIG.option("solver", "Band solver.")
@click.option("--solver-option", "solver_option", multiple=True, metavar="KEY=VALUE",
              help="Solver accuracy setting, repeatable (pwe: cutoff, anchor_spacing, k_grid=monkhorst-pack, ...; "
                   "mpb: resolution, ...).")
@click.option("--workers", type=int, default=None, help="Worker processes [all cores].")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Dask scheduler whose workers write the chunks instead of local processes (they must see --out "
                   "on a shared file system; needs photossl[dask]). Also the config file key 'scheduler'.")
@click.option("--shard", default=None, metavar="I/N",
              help="Write only chunks with index % N == I (N jobs build one dataset; same or separate --out).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Dataset directory; rerunning the same command resumes.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.pass_context
def generate(ctx: click.Context, config_file, solver_option, workers, scheduler, shard, out_dir, progress, **options):
    """Generate a labelled photonic-crystal dataset into --out (resumable, shardable, checksummed).

    Example: photossl generate --preset sibcl-p1 --n-cells 20000 --seed 0 --out data/sibcl-20k
    """
    from photossl.config import read_yaml
    from photossl.data.generate import generate_dataset, preset_config

    values = dict(read_yaml(config_file)) if config_file is not None else {}
    if scheduler is not None and workers is not None:
        raise click.UsageError("--workers sets local processes; with --scheduler the Dask workers run the chunks")
    file_scheduler = values.pop("scheduler", None)  # how to run, not what to make: not a dataset key
    if scheduler is None and workers is None:  # an explicit --workers runs locally whatever the file says
        scheduler = file_scheduler
    values = CONFIG.merge(ctx, values)  # command line > config file; the preset under both
    preset = values.pop("preset", None) or CONFIG.field("preset").default
    if solver_option:
        values["solver_options"] = {**(values.get("solver_options") or {}), **_solver_options(solver_option)}
    config = preset_config(preset, **values)
    result = generate_dataset(config, out_dir, workers=workers, shard=shard, progress=progress, log=status_logger(),
                              scheduler=scheduler)
    share = f"shard {shard}" if shard else "dataset"
    rate = f" at {result.cells_per_second:.2f} cells/s" if result.cells_written else ""
    click.echo(
        f"{share} {'complete' if result.complete else 'incomplete'}: {result.cells_written} cells written{rate}, "
        f"{result.cells_reused} reused, in {out_dir}"
    )
