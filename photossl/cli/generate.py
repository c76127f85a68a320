"""``photossl generate``: make (or resume) a labelled dataset of unit cells, optionally as one shard of many."""

from __future__ import annotations

from pathlib import Path

import click

PRESET_NAMES = ("sibcl-p1", "essl-pm", "p4m", "cylinder-surrogate")


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
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
              help="Recipe to start from (default sibcl-p1); the options below override it.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML file of generate-config keys, applied over the preset and under the options.")
@click.option("--n-cells", type=int, default=None, help="Number of cells [1024].")
@click.option("--seed", type=int, default=None, help="Dataset seed; cell i depends only on (seed, i) [0].")
@click.option("--chunk-size", type=int, default=None, help="Cells per chunk file (the unit of resume and work) [64].")
@click.option("--cell", "cell_kind", type=click.Choice(["levelset", "cylinder"]), default=None,
              help="Cell generator (set by the preset).")
@click.option("--group", default=None, help="Plane group of level-set cells, e.g. p1, pm, p4m (set by the preset).")
@click.option("--size", type=int, default=None, help="Pixels per cell side [32].")
@click.option("--max-order", type=int, default=None, help="Max Fourier order of level-set cells [1].")
@click.option("--eps-in-range", default=None, help="eps_in ~ U(LOW, HIGH), as 'LOW,HIGH' [1,20].")
@click.option("--eps-out-range", default=None, help="eps_out ~ U(LOW, HIGH), as 'LOW,HIGH' [1,20].")
@click.option("--filling-range", default=None, help="Filling ~ U(LOW, HIGH) of level-set cells [0.01,0.99].")
@click.option("--radius-range", default=None, help="Radius ~ U(LOW, HIGH) of cylinder cells [0,0.5].")
@click.option("--polarizations", default=None, help="Comma-separated: tm, te [tm]. The first one also fills 'dos'.")
@click.option("--grid-size", type=int, default=None, help="k-grid points per axis (SIB-CL grid) [25].")
@click.option("--n-bands", type=int, default=None, help="Number of bands [10].")
@click.option("--targets", default=None,
              help="Comma-separated labels: dos, bands, gaps, group_velocity [dos,bands,gaps]; 'none' for cells only.")
@click.option("--symmetry/--no-symmetry", "use_symmetry", default=None,
              help="Solve only symmetry-inequivalent k-points [on].")
@click.option("--solver", type=click.Choice(["pwe", "mpb"]), default=None, help="Band solver [pwe].")
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
def generate(preset, config_file, n_cells, seed, chunk_size, cell_kind, group, size, max_order, eps_in_range,
             eps_out_range, filling_range, radius_range, polarizations, grid_size, n_bands, targets, use_symmetry,
             solver, solver_option, workers, scheduler, shard, out_dir, progress):
    """Generate a labelled photonic-crystal dataset into --out (resumable, shardable, checksummed).

    Example: photossl generate --preset sibcl-p1 --n-cells 20000 --seed 0 --out data/sibcl-20k
    """
    from photossl.config import read_yaml
    from photossl.data.generate import PRESETS, preset_config
    from photossl.errors import PhotosslError

    values = dict(read_yaml(config_file)) if config_file is not None else {}
    chosen_preset = preset or values.pop("preset", None) or "sibcl-p1"
    values.pop("preset", None)
    if scheduler is not None and workers is not None:
        raise click.UsageError("--workers sets local processes; with --scheduler the Dask workers run the chunks")
    file_scheduler = values.pop("scheduler", None)  # how to run, not what to make: not a dataset key
    if scheduler is None and workers is None:  # an explicit --workers runs locally whatever the file says
        scheduler = file_scheduler
    if chosen_preset not in PRESETS:
        raise PhotosslError(f"unknown preset '{chosen_preset}' (choose from {', '.join(PRESETS)})")
    target_names = _names(targets)
    if target_names == ["none"]:
        target_names = []
    given = {
        "n_cells": n_cells, "seed": seed, "chunk_size": chunk_size, "cell": cell_kind, "group": group, "size": size,
        "max_order": max_order, "eps_in_range": _pair(eps_in_range, "--eps-in-range"),
        "eps_out_range": _pair(eps_out_range, "--eps-out-range"),
        "filling_range": _pair(filling_range, "--filling-range"), "radius_range": _pair(radius_range, "--radius-range"),
        "polarizations": _names(polarizations), "grid_size": grid_size, "n_bands": n_bands, "targets": target_names,
        "use_symmetry": use_symmetry, "solver": solver,
    }
    values.update({k: v for k, v in given.items() if v is not None})
    if solver_option:
        values["solver_options"] = {**(values.get("solver_options") or {}), **_solver_options(solver_option)}
    config = preset_config(chosen_preset, **values)

    from photossl.data.generate import generate_dataset

    result = generate_dataset(config, out_dir, workers=workers, shard=shard, progress=progress,
                              log=lambda message: click.echo(message, err=True), scheduler=scheduler)
    share = f"shard {shard}" if shard else "dataset"
    rate = f" at {result.cells_per_second:.2f} cells/s" if result.cells_written else ""
    click.echo(
        f"{share} {'complete' if result.complete else 'incomplete'}: {result.cells_written} cells written{rate}, "
        f"{result.cells_reused} reused, in {out_dir}"
    )
