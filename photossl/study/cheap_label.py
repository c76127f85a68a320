"""Cheap-label (multi-fidelity) pretraining in a study: the network is first trained on rough labels of the whole
pretraining pool, then fine-tuned on each label budget from there, and the rough labels' cost is recorded next to
the exact labels' so that "budget + equivalent labels" can be compared.

1. Rough labels: the study's cells relabelled by photossl's own solver at a cheap recipe
   (:func:`photossl.data.rough.rough_config`) into ``STUDY/rough/<preset>-<hash>/`` (resumable like generate; it
   holds the same cells, checked map by map, and a split file whose labelled pool is the whole pretraining pool).
2. Rough-label run: the supervised network (the shared ``finetune`` keys, overridden by the method's ``pretrain``
   keys) trained on the rough labels of every pretraining-pool cell, its epoch selected on the validation cells'
   rough labels, into ``STUDY/pretrain/cheap-label-<hash>/`` (photossl finetune layout). A rerun skips it once its
   ``metrics.json`` exists. No exact label is read to train or select it.
3. ``label_cost.json`` there: solver CPU seconds per rough label (recorded when the rough labels were generated),
   for the pool, and per exact label (recorded when the exact data were generated, else measured on a few cells);
   rough_equivalent_labels = pool size / the exact-over-rough cost ratio measured side by side on the same cells
   (:func:`photossl.data.rough.measure_cost_ratio`). Two timings recorded at different times, maybe on different
   machines or under different load, give only ``rough_equivalent_labels_from_recorded``. Also the rough labels'
   DOS error against the exact ones and the rough-label network's error, both on the validation cells.
The fine-tuning cells then start from that run (encoder, and head and target scaling, since the target is the same),
with the encoder at ``lr * encoder_lr_scale`` as for pretrained encoders.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from photossl.config import build_config, settings
from photossl.errors import PhotosslError
from photossl.files import WriteError
from photossl.finetune import METRICS_FILE, MODEL_FILE, FinetuneConfig, finetune, make_finetune_config
from photossl.study.config import CHEAP_LABEL, StudyConfig
from photossl.study.records import PretrainJob, StudyPlan, _sha, file_sha256, write_json_atomic

COST_FILE = "label_cost.json"
# Cells on which the exact labels' cost is measured when the exact dataset did not record it.
COST_SAMPLE_CELLS = 16


@dataclass
class RoughLabelRun:
    """A cheap-label method's "pretraining": the typed fine-tuning config of the rough-label run (on the study's data
    folder; the run reads ``rough_dir`` under STUDY/rough instead) and the recipe of its rough labels."""

    finetune: FinetuneConfig
    rough: Any  # photossl.data.generate.GenerateConfig
    rough_dir: str


def _exact_config(config: StudyConfig, source: str | None):
    from photossl.data import preset_config
    from photossl.data.rough import dataset_generate_config

    if source is None:
        values = dict(config.generate)
        return preset_config(values.pop("preset", "sibcl-p1"), **values)
    return dataset_generate_config(source)


def plan_cheap_label(config: StudyConfig, label: str, stage: FinetuneConfig, source: str | None,
                     data_dir: Path) -> PretrainJob:
    """The rough-label run of ``label`` (whose cells fine-tune as ``stage`` says), named by everything it depends on
    (rough recipe, training keys, data, split), so labels with the same settings share it. Raises PhotosslError for a
    bad recipe or key."""
    from photossl.data.rough import rough_config

    options = config.options(label)
    values = {"device": config.device, "progress": config.progress, **config.finetune, **options.pretrain,
              "target": stage.target, "polarization": stage.polarization}
    if config.threads is not None:
        values.setdefault("threads", config.threads)
    try:
        run = make_finetune_config({**values, "data": str(data_dir), "label": label})
        rough = rough_config(_exact_config(config, source), stage.target, stage.polarization, **options.rough)
    except PhotosslError as err:
        raise PhotosslError(f"method '{label}': {err}") from None
    rough_values = rough.to_dict()
    shared = {k: v for k, v in settings(run).items() if k != "label"}  # labels with the same settings share the run
    # The split is the data folder's own (its path is in the settings), whatever sizes the config asked it for: so
    # the tuning study, which reads that split as it is (sizes None), names its candidates as the study names them,
    # and the study reuses the chosen candidate's run. The key keeps that shape so that runs on disk keep their names.
    key = _sha({"rough": rough_values, "split": [config.split_seed, None, None], "finetune": shared})[:8]
    return PretrainJob(f"{CHEAP_LABEL}-{key}", RoughLabelRun(run, rough, f"{rough.preset}-{_sha(rough_values)[:8]}"),
                       kind=CHEAP_LABEL)


def run_cheap_label_job(plan: StudyPlan, job: PretrainJob, log: Callable[[str], None]) -> None:
    """Rough labels, the rough-label run and its label cost; sets the job's status (never raises for a failure
    other than a failed write)."""
    run_dir = plan.pretrain_dir / job.name
    tick = time.perf_counter()
    log(f"pretrain {job.name} (rough labels, for {', '.join(job.labels)}) -> {run_dir}")
    try:
        cost = _run(plan, job, run_dir, log)
        job.status = "ok"
        job.checkpoint_sha256 = file_sha256(run_dir / MODEL_FILE)
        log(f"pretrain {job.name}: done in {time.perf_counter() - tick:.0f} s; rough labels "
            f"{cost['rough_per_label_solver_s']:.3g} s each against {cost['exact_per_label_solver_s']:.3g} s exact, "
            f"pool of {cost['n_pool']} = {cost['rough_equivalent_labels']:.0f} exact labels' cost; validation DOS "
            f"error of the rough labels {cost['rough_labels_validation_error']:.4g}, of the rough-label network "
            f"{cost['pretrained_validation_error']:.4g}")
    except WriteError:
        raise
    except Exception as err:  # noqa: BLE001 - a failed method must not stop the others
        job.status, job.error = "failed", f"{type(err).__name__}: {err}"
        log(f"pretrain {job.name}: FAILED ({job.error}); its cells will be reported as failed")
    job.wall_time_s = round(time.perf_counter() - tick, 3)


def mark_finished_cheap_label(plan: StudyPlan, job: PretrainJob) -> None:
    """Mark ``job`` ok when another process finished it (its model, metrics and label cost are there)."""
    run_dir = plan.pretrain_dir / job.name
    if job.status == "pending" and _finished(run_dir):
        job.status = "ok"
        job.checkpoint_sha256 = file_sha256(run_dir / MODEL_FILE)


def _finished(run_dir: Path) -> bool:
    """Whether the rough-label run in ``run_dir`` has its model, metrics and label cost."""
    return all((run_dir / name).exists() for name in (MODEL_FILE, METRICS_FILE, COST_FILE))


def label_costs(plan: StudyPlan) -> dict[str, dict]:
    """``label_cost.json`` of every finished rough-label run, by method label (for summary.json)."""
    costs = {}
    for job in plan.jobs.values():
        path = plan.pretrain_dir / job.name / COST_FILE
        if job.kind != CHEAP_LABEL or not path.exists():
            continue
        record = with_side_by_side_equivalent(json.loads(path.read_text()))
        for label in job.labels:
            costs[label] = record
    return costs


def with_side_by_side_equivalent(record: dict[str, Any]) -> dict[str, Any]:
    """A label-cost record whose ``rough_equivalent_labels`` uses the cost ratio measured side by side.

    Records written before that rule counted the pool with the two recorded timings; they keep that figure as
    ``rough_equivalent_labels_from_recorded``. A record already in the current form is returned unchanged.
    """
    if "rough_equivalent_labels_from_recorded" in record or "cost_ratio_measured_together" not in record:
        return record
    updated = {}
    for key, value in record.items():
        if key == "rough_equivalent_labels":
            updated[key] = record["n_pool"] / record["cost_ratio_measured_together"]["exact_over_rough"]
            updated["rough_equivalent_labels_from_recorded"] = value
        else:
            updated[key] = value
    return updated


# ---------------------------------------------------------------------------------------------------- the steps
def _run(plan: StudyPlan, job: PretrainJob, run_dir: Path, log) -> dict[str, Any]:
    from photossl.data.rough import generate_rough_dataset
    from photossl.data.splits import DatasetSplits, save_splits
    from photossl.finetune import resolve_splits

    if _finished(run_dir):
        log(f"pretrain {job.name}: already trained")  # e.g. by the tuning study, whose rough labels live with it
        return with_side_by_side_equivalent(json.loads((run_dir / COST_FILE).read_text()))
    config = plan.config
    rough_config = job.config.rough
    rough_dir = plan.out / "rough" / job.config.rough_dir
    rough = generate_rough_dataset(plan.data_dir, rough_dir, rough_config, workers=config.generate_workers,
                                   progress=config.progress, log=log, scheduler=config.scheduler)
    log(f"rough labels: {rough_dir} ({rough.cells_written} cells labelled now)")
    splits = resolve_splits(plan.data_dir, rough_config.n_cells, config.split_seed)
    # The rough-label run trains on the whole pretraining pool: make it the labelled pool of the rough data's split.
    save_splits(DatasetSplits(splits.seed, splits.pretrain, splits.pretrain, splits.validation, splits.test,
                              splits.n_cells, True), rough_dir)
    run = dataclasses.replace(job.config.finetune, data=str(rough_dir), label=job.name, budget=len(splits.pretrain),
                              seed=0, split_seed=config.split_seed)
    if (run_dir / METRICS_FILE).exists() and (run_dir / MODEL_FILE).exists():
        log(f"pretrain {job.name}: already trained")
    else:
        finetune(run, run_dir, overwrite=True, echo=log)
    if (run_dir / COST_FILE).exists():
        return with_side_by_side_equivalent(json.loads((run_dir / COST_FILE).read_text()))
    cost = _label_cost(plan, job, rough, splits)
    write_json_atomic(run_dir / COST_FILE, cost)
    return cost


def _label_cost(plan: StudyPlan, job: PretrainJob, rough, splits) -> dict[str, Any]:
    """Solver CPU seconds of both fidelities, and the rough labels' and the rough-label network's validation error."""
    from photossl.data.generate import GenerateConfig
    from photossl.data.rough import dataset_generate_config, label_cpu_per_cell, measure_cost_ratio

    polarization = rough.config.polarizations[0]
    exact = dataset_generate_config(plan.data_dir)
    # The exact labels of this target alone (one polarization, as the rough ones).
    exact_one = build_config(GenerateConfig, {**exact.to_dict(), "targets": list(rough.config.targets),
                                              "polarizations": [polarization]})
    together = measure_cost_ratio(exact_one, rough.config, COST_SAMPLE_CELLS)
    recorded = label_cpu_per_cell(plan.data_dir) if tuple(exact.polarizations) == (polarization,) else None
    exact_cost = recorded[0] if recorded else together.exact_per_label_s
    rough_cost = rough.cpu_s_per_cell if rough.cpu_s_per_cell is not None else together.rough_per_label_s
    n_pool = int(len(splits.pretrain))
    errors = _validation_errors(plan, job, rough.path, splits)
    return {
        "method": CHEAP_LABEL,
        "labels": list(job.labels),
        "unit": "solver CPU seconds (one torch thread)",
        "rough_recipe": {"grid_size": rough.config.grid_size, "solver_options": rough.config.solver_options,
                         "use_symmetry": rough.config.use_symmetry},
        "rough_dataset": str(rough.path),
        "n_pool": n_pool,
        "rough_per_label_solver_s": rough_cost,
        "rough_pool_solver_s": rough_cost * n_pool,
        "exact_per_label_solver_s": exact_cost,
        "exact_cost_source": ("recorded when the exact data were generated" if recorded
                              else f"measured on {together.cells} cells"),
        # Two timings taken at different times (and maybe machines) would mix in the load of each: the pool is
        # counted with the ratio measured on the same cells, side by side.
        "rough_equivalent_labels": n_pool / together.exact_over_rough,
        "rough_equivalent_labels_from_recorded": rough_cost * n_pool / exact_cost,
        "cost_ratio_measured_together": {"cells": together.cells, "rounds": together.rounds,
                                         "exact_per_label_solver_s": together.exact_per_label_s,
                                         "rough_per_label_solver_s": together.rough_per_label_s,
                                         "exact_over_rough": together.exact_over_rough,
                                         "exact_over_rough_per_round": list(together.per_round)},
        **errors,
    }


def _validation_errors(plan: StudyPlan, job: PretrainJob, rough_dir: Path, splits) -> dict[str, float]:
    """The rough labels' error, and the rough-label network's, against the exact labels of the validation cells."""
    from photossl.data.loaders import load_arrays
    from photossl.finetune import load_finetuned, score, target_info
    from photossl.finetune.data import open_target_dataset

    config = job.config.finetune
    exact, rough = open_target_dataset(plan.data_dir, config), open_target_dataset(rough_dir, config)
    try:
        info = target_info(exact, config.target, config.polarization)
        rough_info = target_info(rough, config.target, config.polarization)
        if info.shape != rough_info.shape or ("freq" in info.coords and not np.allclose(
                info.coords["freq"], rough_info.coords["freq"])):
            raise PhotosslError("the rough labels lie on other frequencies (or bins) than the exact ones")
        cells = splits.validation
        _, truth = load_arrays(exact, info.variable, cells)
        _, rough_labels = load_arrays(rough, rough_info.variable, cells)
        raw, _ = load_arrays(exact, None, cells, normalise=False)
    finally:
        exact.close()
        rough.close()
    model = load_finetuned(plan.pretrain_dir / job.name)
    predicted = model.predict(raw)
    truth = truth.double().numpy()
    return {"rough_labels_validation_error": score(info, rough_labels.double().numpy(), truth)[info.primary_metric],
            "pretrained_validation_error": score(info, predicted, truth)[info.primary_metric],
            "validation_metric": info.primary_metric, "n_validation": int(len(cells))}
