"""A study's diagnostics and figures: learned-symmetry diagnostics of every encoder, embedding orbits, symmetry
errors, and predicted against true DOS. Each step logs its own failure and never stops the others."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from photossl.files import WriteError, replace_atomically
from photossl.finetune import make_finetune_config
from photossl.finetune.data import open_target_dataset
from photossl.study.encoders import LoadedEncoder, load_encoder
from photossl.study.plan import Cell, StudyPlan, cell_path, read_cell, write_json_atomic
from photossl.study.table import aggregate


# ------------------------------------------------------------------------------------------ diagnostics, figures
def _diagnostic_images(plan: StudyPlan, n: int):
    """(normalised cells, their dataset indices) for diagnostics: test, then validation, then the rest (no labels
    are read). Vision: the first ``n`` test images, normalised as the encoders read them (indices into the test
    split)."""
    from photossl.data.loaders import load_arrays, open_cells
    from photossl.finetune import resolve_splits

    if plan.config.track == "vision":
        from photossl.finetune.vision_data import VisionImages
        from photossl.vision import normalize_images

        images = VisionImages.load(plan.shared_config()).test[0][:n]
        return normalize_images(images, plan.config.dataset), np.arange(len(images))
    dataset = open_cells(plan.data_dir, ["eps"])
    try:
        n_cells = int(dataset.sizes["cell"])
        splits = resolve_splits(plan.data_dir, n_cells, plan.config.split_seed)
        rest = np.setdiff1d(np.arange(n_cells), np.concatenate([splits.test, splits.validation]))
        order = np.concatenate([splits.test, splits.validation, rest])[:n]
        cells = np.sort(order)
        images, _ = load_arrays(dataset, None, cells)
    finally:
        dataset.close()
    return images, cells


def _encoders(plan: StudyPlan, log) -> dict[str, LoadedEncoder]:
    """Every encoder worth diagnosing: each pretraining run, the supervised network, and a random initialisation."""
    import torch

    from photossl.models import build_encoder

    found: dict[str, LoadedEncoder] = {}
    for job in plan.jobs.values():
        if job.status != "ok":
            continue
        name = job.labels[0]  # labels sharing a run share its encoder: the first one names it
        try:
            found[name] = load_encoder(plan.pretrain_dir / job.name, name)
        except Exception as err:  # noqa: BLE001
            log(f"diagnostics: cannot load {job.name} ({type(err).__name__}: {err})")
    vision = plan.config.track == "vision"
    # What labels alone teach: the supervised network at its largest finished budget (first seed).
    for label in plan.config.methods:
        if plan.config.method_kind(label) != "supervised":
            continue
        for budget in reversed(plan.config.budgets_of(label)):
            out = plan.out / "finetune" / label / f"b{budget}-s{plan.config.seeds[0]}"
            record = read_cell(cell_path(plan, Cell(label, budget, plan.config.seeds[0])))
            if record is not None and record.get("status") == "ok" and (out / "model.pt").exists():
                name = f"{label}-b{budget}"
                found[name] = _vision_classifier(out, name) if vision else load_encoder(out, name)
                break
    # What the architecture gives for free: a randomly initialised encoder of the supervised network's kind.
    if vision:
        from photossl.finetune.vision import fresh_encoder
        from photossl.vision import dataset_info

        config = plan.shared_config()
        encoder, _ = fresh_encoder(config, dataset_info(config.dataset).channels, 0)
        found["random-init"] = LoadedEncoder("random-init", encoder.eval())
        return found
    name = plan.config.finetune.get("encoder", "small")
    kwargs: dict[str, Any] = {"in_channels": 1}
    if name in ("essl", "small"):
        kwargs["circular_padding"] = bool(plan.config.finetune.get("circular_padding", True))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        found["random-init"] = LoadedEncoder("random-init", build_encoder(name, **kwargs).eval())
    return found


def _vision_classifier(path, name: str) -> LoadedEncoder:
    """The encoder of a vision fine-tuning run (its classifier's first module)."""
    from photossl.finetune.vision import load_vision_classifier

    model, _ = load_vision_classifier(path)
    return LoadedEncoder(name, model[0])


def run_diagnostics(plan: StudyPlan, log) -> dict[str, dict]:
    """Symmetry diagnostics of every encoder (JSON and NetCDF in STUDY/diagnostics), their orbit plots and the
    symmetry-error figure; on the study's device."""
    from photossl.evaluation import (
        diagnostics_to_dataset,
        orbit_embeddings,
        plot_embedding_orbits,
        plot_symmetry_errors,
        symmetry_diagnostics,
    )
    from photossl.runtime import select_device

    config = plan.config
    device = select_device(config.device)
    folder, figures = plan.out / "diagnostics", plan.out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    images, cell_ids = _diagnostic_images(plan, config.diagnostics_cells)
    results = {}
    for name, loaded in _encoders(plan, log).items():
        encoder = loaded.encoder.to(device)
        if loaded.predictor is not None:
            loaded.predictor.to(device)
        try:
            tick = time.perf_counter()
            result = symmetry_diagnostics(encoder, images, config.diagnostics_groups, prediction_head=loaded.predictor,
                                          prediction_group=loaded.predict_group or "rot4",
                                          relative_prediction=loaded.relative)
            if loaded.representation is not None:
                from photossl.evaluation.known_group import known_group_diagnostics
                from photossl.symmetry import finite_group

                result["known_group"] = known_group_diagnostics(
                    loaded.embed.to(device), images, finite_group(loaded.representation.group_name),
                    loaded.representation)
            write_json_atomic(folder / f"{name}.json", result)
            table = diagnostics_to_dataset(result)
            replace_atomically(folder / f"{name}.nc", lambda tmp: table.to_netcdf(tmp, engine="h5netcdf"))
            results[name] = result
            if config.figures:
                embeddings, labels, elements = orbit_embeddings(encoder, images[:8], "rot4")
                plot_embedding_orbits(embeddings, labels, figures / f"orbits_{name}", element_names=elements,
                                      cell_ids=[int(c) for c in cell_ids[:8]], encoder_name=name)
            accuracy = result["prediction"]["accuracy"] if result.get("prediction") else None
            log(f"diagnostics {name}: {len(images)} cells, {time.perf_counter() - tick:.0f} s"
                + (f", transformation-prediction accuracy {accuracy:.3f}" if accuracy is not None else ""))
        except WriteError:
            raise
        except Exception as err:  # noqa: BLE001
            log(f"diagnostics {name}: FAILED ({type(err).__name__}: {err})")
    if results and config.figures:
        plot_symmetry_errors(results, figures / "symmetry_errors",
                             metrics=("invariance_error", "wahba_error", "gamma_f"))
    return results


def plot_predictions(plan: StudyPlan, rows: list[dict], metric: str, log) -> list[str]:
    """Predicted against true DOS on test cells for the best network method and the reference, at the largest
    budget with results (first seed)."""
    from photossl.evaluation import plot_dos_predictions
    from photossl.finetune import load_finetuned, resolve_splits

    ok = [r for r in rows if r["status"] == "ok" and r["kind"] != "classical"]
    if not ok or metric != "dos_rel_l1":
        return []
    budget = max(r["budget"] for r in ok)
    means = aggregate([r for r in ok if r["budget"] == budget], metric)
    best = min(means, key=lambda m: means[m][str(budget)]["mean"])
    labels = list(dict.fromkeys([best, plan.config.reference]))
    written = []
    for label in labels:
        out = plan.out / "finetune" / label / f"b{budget}-s{plan.config.seeds[0]}"
        if not (out / "model.pt").exists():
            continue
        model = load_finetuned(out)
        config = make_finetune_config({**model.config, "data": str(plan.data_dir)})
        dataset = open_target_dataset(plan.data_dir, config)
        try:
            from photossl.data.loaders import load_arrays

            splits = resolve_splits(plan.data_dir, int(dataset.sizes["cell"]), plan.config.split_seed)
            cells = splits.test[:4]
            eps, truth = load_arrays(dataset, model.target.variable, cells, normalise=False)
        finally:
            dataset.close()
        pred = model.predict(eps)
        truth = truth.double().numpy()
        if model.target.offset is not None:
            pred, truth = pred + model.target.offset, truth + model.target.offset
        stem = plan.out / "figures" / f"dos_predictions_{label}"
        plot_dos_predictions(model.target.coords.get("freq"), truth, pred, stem, n=len(cells),
                             cell_ids=[int(c) for c in cells],
                             title=f"{label}: {budget} labels, seed {plan.config.seeds[0]} (test cells)")
        written.append(str(stem))
        log(f"figure {stem}.png: {label} at {budget} labels on test cells {cells.tolist()}")
    return written


def diagnostics_summary(result: dict) -> dict[str, Any]:
    """Means per group of the per-transformation diagnostics, for summary.json."""
    out: dict[str, Any] = {}
    for group, info in result["groups"].items():
        rows = [r for r in result["transformations"] if r["group"] == group]
        out[group] = {
            "invariance_error": float(np.mean([r["invariance_error"] for r in rows])),
            "wahba_error": float(np.mean([r["wahba_error"] for r in rows])),
            "gamma_f": info["gamma_f"],
            "composition_error_mean": info["composition_error_mean"],
        }
    if result.get("prediction"):
        out["prediction_accuracy"] = result["prediction"]["accuracy"]
    return out
