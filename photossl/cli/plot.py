"""``photossl plot``: the study's figures (PNG and PDF) from a study folder, a results table, diagnostics, or a
model and a dataset."""

from __future__ import annotations

from pathlib import Path

import click


def _stem(out: Path | None, default: Path) -> Path:
    return out if out is not None else default


@click.group("plot")
def plot() -> None:
    """Figures: error-vs-labels, symmetry errors, embedding orbits, DOS predictions (each as .png and .pdf)."""


@plot.command("error-vs-labels")
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output path stem [STUDY/figures/error_vs_labels, or next to the table].")
@click.option("--metric", default=None, help="Column to plot [the study's metric, else dos_rel_l1].")
@click.option("--at-error", type=float, default=None,
              help="Error at which label-saving factors are read off [the reference's error at its largest budget].")
@click.option("--reference", default="supervised", show_default=True, help="Method the factors compare against.")
@click.option("--spread", type=click.Choice(["minmax", "std"]), default="minmax", show_default=True,
              help="Band around the mean over seeds.")
@click.option("--title", default=None, help="Figure title.")
@click.option("--max-extrapolation", type=click.FloatRange(min=1.0), default=2.0, show_default=True,
              help="How far beyond its measured budgets a curve may be extended (log-log) to read off a factor; "
                   "1 = never.")
@click.option("--fold-long/--no-fold-long", default=True, show_default=True,
              help="Join X-long runs (older studies) onto X's curve.")
def error_vs_labels(source: Path, out: Path | None, metric: str | None, at_error: float | None, reference: str,
                    spread: str, title: str | None, max_extrapolation: float, fold_long: bool) -> None:
    """Test error against the number of labels (log-log), one line per method, from a study folder or a
    results .csv / .nc file; prints the label-saving factors."""
    import json

    from photossl.errors import PhotosslError
    from photossl.evaluation import label_saving, plot_error_vs_labels
    from photossl.evaluation.label_efficiency import saving_lines

    if source.is_dir():
        table = source / "results.csv"
        if not table.exists():
            raise PhotosslError(f"{source} has no results.csv (is it a study folder? run photossl study first)")
        default = source / "figures" / "error_vs_labels"
        summary = source / "summary.json"
        if metric is None and summary.exists():
            metric = json.loads(summary.read_text()).get("metric")
    else:
        table, default = source, source.with_name(f"{source.stem}_error_vs_labels")
    stem = _stem(out, default)
    metric = metric or "dos_rel_l1"
    plot_error_vs_labels(table, stem, metric, at_error, reference=reference, spread=spread, title=title,
                         max_extrapolation=max_extrapolation, fold_long=fold_long)
    click.echo(f"wrote {stem}.png and {stem}.pdf")
    saving = label_saving(table, metric, at_error, reference, max_extrapolation=max_extrapolation,
                          fold_long=fold_long)
    for line in saving_lines(saving):
        click.echo(line)


def _named(item: str) -> tuple[str | None, Path]:
    name, sep, path = item.partition("=")
    return (name, Path(path)) if sep and name and not Path(item).exists() else (None, Path(item))


@plot.command("symmetry")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output path stem [STUDY/figures/symmetry_errors or ./symmetry_errors].")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Dataset folder whose cells are embedded, for SOURCES that are runs.")
@click.option("--n-cells", type=int, default=512, show_default=True, help="Cells embedded, for runs.")
@click.option("--split", type=click.Choice(["test", "validation", "labelled", "pretrain", "all"]), default="test",
              show_default=True, help="Split part the cells come from, for runs ('pretrain': seen in pretraining).")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Split of the dataset.")
@click.option("--groups", default="rot4,flip,half_translate", show_default=True,
              help="Finite groups whose elements are measured, for runs.")
@click.option("--metrics", default="invariance_error,wahba_error,gamma_f", show_default=True,
              help="Diagnostics shown, one panel each.")
def symmetry(sources: tuple[str, ...], out: Path | None, data: Path | None, n_cells: int, split: str,
             split_seed: int, groups: str, metrics: str) -> None:
    """Invariance / Wahba errors / CARE's γ_f per transformation and method.

    SOURCES: a study folder (all of STUDY/diagnostics), diagnostics files (.json or .nc, as photossl study writes
    them), or runs (a pretraining run folder or a fine-tuning folder, with --data); NAME=PATH sets a method's name.
    """
    import json

    import xarray as xr

    from photossl.errors import PhotosslError
    from photossl.evaluation import plot_symmetry_errors, symmetry_diagnostics

    by_method: dict = {}
    default = Path("symmetry_errors")
    images = None
    for item in sources:
        name, path = _named(item)
        if not path.exists():
            raise PhotosslError(f"{path} does not exist")
        if path.is_dir() and (path / "diagnostics").is_dir():
            files = sorted((path / "diagnostics").glob("*.json"))
            if not files:
                raise PhotosslError(f"{path / 'diagnostics'} holds no diagnostics (.json) files")
            by_method.update({f.stem: json.loads(f.read_text()) for f in files})
            default = path / "figures" / "symmetry_errors"
        elif path.suffix == ".json":
            by_method[name or path.stem] = json.loads(path.read_text())
        elif path.suffix == ".nc":
            with xr.open_dataset(path, engine="h5netcdf") as handle:
                by_method[name or path.stem] = handle.load()
        else:
            from photossl.study.encoders import load_encoder, split_cells

            if data is None:
                raise PhotosslError(f"{path} is a run: pass --data DIR to embed its cells")
            if images is None:
                from photossl.data.loaders import load_arrays

                images, _ = load_arrays(data, None, split_cells(data, split, n_cells, split_seed))
            loaded = load_encoder(path, name)
            result = symmetry_diagnostics(
                loaded.encoder, images, [g for g in groups.split(",") if g], prediction_head=loaded.predictor,
                prediction_group=loaded.predict_group or "rot4", relative_prediction=loaded.relative)
            by_method[loaded.name] = result
            if result.get("prediction"):
                click.echo(f"{loaded.name}: transformation-prediction accuracy {result['prediction']['accuracy']:.3f} "
                           f"on {len(images)} {split} cells")
    stem = _stem(out, default)
    plot_symmetry_errors(by_method, stem, metrics=[m for m in metrics.split(",") if m])
    click.echo(f"wrote {stem}.png and {stem}.pdf ({', '.join(by_method)})")


@plot.command("orbits")
@click.option("--model", "model_path", type=click.Path(path_type=Path, exists=True), required=True,
              help="Pretraining run folder / checkpoint, or fine-tuning folder FT.")
@click.option("--data", type=click.Path(path_type=Path, exists=True), required=True, help="Dataset folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output path stem.")
@click.option("--group", default="rot4", show_default=True, help="Finite group whose orbits are drawn.")
@click.option("--n-cells", type=int, default=8, show_default=True, help="Cells (orbits) drawn.")
@click.option("--split", type=click.Choice(["test", "validation", "labelled", "pretrain", "all"]), default="test",
              show_default=True, help="Split part the cells come from.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Split of the dataset.")
def orbits(model_path: Path, data: Path, out: Path, group: str, n_cells: int, split: str, split_seed: int) -> None:
    """Embeddings (first two principal components) of a few cells and their group orbits."""
    from photossl.data.loaders import load_arrays
    from photossl.evaluation import orbit_embeddings, plot_embedding_orbits
    from photossl.study.encoders import load_encoder, split_cells

    loaded = load_encoder(model_path)
    cells = split_cells(data, split, n_cells, split_seed)
    images, _ = load_arrays(data, None, cells)
    embeddings, labels, names = orbit_embeddings(loaded.encoder, images, group)
    plot_embedding_orbits(embeddings, labels, out, element_names=names, max_orbits=n_cells,
                          cell_ids=[int(c) for c in cells], encoder_name=model_path.name)
    click.echo(f"wrote {out}.png and {out}.pdf")


@plot.command("dos")
@click.option("--model", "model_path", type=click.Path(path_type=Path, exists=True), required=True,
              help="Fine-tuning folder FT of a DOS model (photossl finetune).")
@click.option("--data", type=click.Path(path_type=Path, exists=True), required=True,
              help="Dataset folder holding the true DOS.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output path stem.")
@click.option("--n", "n_cells", type=int, default=4, show_default=True, help="Cells shown.")
@click.option("--split", type=click.Choice(["test", "validation", "labelled", "all"]), default="test",
              show_default=True, help="Split part the cells come from (the model's split seed).")
def dos(model_path: Path, data: Path, out: Path, n_cells: int, split: str) -> None:
    """Predicted against true DOS for a few cells, each titled with its SIB-CL relative L1 error."""
    from photossl.data.loaders import load_arrays
    from photossl.errors import PhotosslError
    from photossl.evaluation import plot_dos_predictions
    from photossl.finetune import load_finetuned
    from photossl.study.encoders import split_cells

    model = load_finetuned(model_path)
    if model.target.name not in ("dos", "dos_eldiff"):
        raise PhotosslError(f"{model_path} predicts '{model.target.name}', not the DOS")
    cells = split_cells(data, split, n_cells, int(model.config.get("split_seed", 0)))
    eps, truth = load_arrays(data, model.target.variable, cells, normalise=False)
    pred, truth = model.predict(eps), truth.double().numpy()
    if model.target.offset is not None:
        pred, truth = pred + model.target.offset, truth + model.target.offset
    config = model.config
    title = (f"{model.method}: {config.get('budget', '?')} labels, seed {config.get('seed', '?')} "
             f"({split} cells; {model.target.name} model)")
    plot_dos_predictions(model.target.coords.get("freq"), truth, pred, out, n=len(cells),
                         cell_ids=[int(c) for c in cells], title=title)
    click.echo(f"wrote {out}.png and {out}.pdf (cells {', '.join(map(str, cells))})")
