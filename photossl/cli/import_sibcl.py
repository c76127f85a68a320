"""``photossl import-sibcl``: convert a SIB-CL / E-SSL h5 file into a photossl dataset directory."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("import-sibcl")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Dataset directory to create (chunks/ + manifest.json).")
@click.option("--polarization", type=click.Choice(["tm", "te"]), default="tm", show_default=True,
              help="Polarization the file was computed for (names the bands_<pol>, dos_<pol> variables).")
@click.option("--chunk-size", default=1024, show_default=True, type=click.IntRange(min=1),
              help="Cells per chunk file.")
@click.option("--overwrite", is_flag=True, help="Replace a different dataset already in --out.")
@click.option("--no-dos", is_flag=True,
              help="Accept a file without DOS groups (an unlabelled pretraining set): images and parameters only.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def import_sibcl(source, out_dir, polarization, chunk_size, overwrite, no_dos, progress):
    """Convert SOURCE, an h5 file in the SIB-CL / E-SSL layout (unitcell/mpbepsimage/<i>, mpbcal/DOS/<i>, ...),
    into a photossl dataset that photossl.data.open_dataset and plain xarray read."""
    from photossl.data.sibcl_import import import_sibcl as run_import

    result = run_import(source, out_dir, polarization, chunk_size, overwrite, progress, require_dos=not no_dos)
    if result.already_done:
        click.echo(f"{out_dir} already holds this import of {source.name} ({result.n_cells} cells); nothing to do")
        return
    click.echo(f"imported {result.n_cells} cells from {source.name} into {out_dir} ({len(result.chunks)} chunks)")
    if result.skipped:
        click.echo(f"absent from the file (skipped): {', '.join(result.skipped)}")
