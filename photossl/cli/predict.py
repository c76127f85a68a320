"""``photossl predict``: apply a fine-tuned surrogate to new cells and write the predicted DOS, gaps or bands."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("predict")
@click.option("--model", "model_path", type=click.Path(path_type=Path), required=True,
              help="Fine-tuning output folder FT (photossl finetune), or its model.pt / model.npz.")
@click.option("--data", "source", type=click.Path(path_type=Path), required=True,
              help="Cells: a dataset folder, a .nc file, a .npy array (N, N) or (B, N, N) of raw ε, or an .h5 file "
                   "(dataset 'eps', --key, or SIB-CL's unitcell/mpbepsimage/<i>).")
@click.option("--key", default=None, help="Dataset name inside an .h5 file.")
@click.option("--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="NetCDF file to write: the target and, for DOS models, the DOS on the scaled axis (dos) and "
                   "in physical units (omega, dos_physical); eps_mean; labels and per-cell error when the input "
                   "has them.")
@click.option("--batch-size", type=int, default=512, show_default=True, help="Cells per forward pass.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when present.")
def predict(model_path: Path, source: Path, key: str | None, out_file: Path, batch_size: int, device: str) -> None:
    """Predict with a fine-tuned model and write NetCDF.

    Example: photossl predict --model FT --data cells.npy --out preds.nc
    """
    from photossl.errors import PhotosslError
    from photossl.finetune import predict_to_netcdf
    from photossl.runtime import select_device

    if batch_size < 1:
        raise PhotosslError(f"--batch-size must be >= 1, got {batch_size}")
    dataset = predict_to_netcdf(model_path, source, out_file, key=key, batch_size=batch_size,
                                device=select_device(device),
                                on_warning=lambda message: click.echo(f"Warning: {message}", err=True))
    names = ", ".join(name for name in dataset.data_vars if not name.startswith(("label_", "error")))
    click.echo(f"predicted {names} for {dataset.sizes['cell']} cells with {dataset.attrs['method']}; wrote {out_file}")
    errors = {k[len("error_"):]: v for k, v in dataset.attrs.items() if k.startswith("error_")}
    if errors:
        click.echo("error against the input's labels: " + ", ".join(f"{k} {v:.4g}" for k, v in errors.items()))
