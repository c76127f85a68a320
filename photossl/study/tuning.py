"""Fair, validation-only tuning of each method's knobs before a study.

A study config's ``tuning`` section gives every method the same budget: ``trials`` candidate settings, drawn from one
shared search ``space`` of ``pretrain.<key>`` / ``finetune.<key>`` values. Candidate 0 is the method as written; the
others are distinct random points of the space restricted to the knobs the method uses (E-SSL's ``lambda_predict``
only where there is a prediction head, ``temperature`` only for contrastive bases, ...; a cheap-label method's
``pretrain`` keys are those of its rough-label run). Each candidate is fine-tuned at ``budget`` labels for each of
``seeds`` as a method of a small study in ``STUDY/tuning/``, whose runs and records are kept; the candidate with the
lowest mean *validation* error wins (ties: the earlier candidate), and its values override the method's options in
the study proper. ``STUDY/tuning/chosen.json`` lists every trial and what was chosen.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
from pathlib import Path
from typing import Any, Callable

from photossl.errors import PhotosslError
from photossl.study.config import (
    CHEAP_LABEL,
    RANDOM_INIT,
    MethodOptions,
    StudyConfig,
    TuningConfig,
    make_tuning_config,
)
from photossl.study.execute import StudyLog
from photossl.study.plan import Cell, plan_study, prepare_data, read_cell, write_json_atomic

TRIAL_MARK = "~t"
# Keys of the rough-label run of a cheap-label method that its 'pretrain.' knobs may set (fine-tuning keys).
ROUGH_RUN_KNOBS = ("lr", "epochs", "max_steps", "batch_size", "weight_decay", "patience", "schedule")


def tuned_labels(config: StudyConfig, tuning: TuningConfig) -> list[str]:
    if tuning.methods is not None:
        return list(tuning.methods)
    return [label for label in config.methods if config.method_kind(label) != "classical"]


def knob_applies(config: StudyConfig, label: str, key: str) -> bool:
    """Whether the knob ``key`` (``pretrain.NAME`` / ``finetune.NAME``) changes what method ``label`` computes."""
    from photossl.training import parse_method

    section, _, name = key.partition(".")
    kind = config.method_kind(label)
    if kind == "classical":
        return False
    if section == "finetune":  # a network from scratch trains its encoder at lr itself
        return not (kind == "supervised" and name == "encoder_lr_scale")
    if kind in ("supervised", RANDOM_INIT):  # no pretraining run
        return False
    if kind == CHEAP_LABEL:
        return name in ROUGH_RUN_KNOBS
    spec = parse_method(config.method_name(label))
    uses = {
        "lambda_predict": spec.predict,
        "predict_views": spec.predict,
        "lambda_care": spec.care or spec.known_group,
        "care_chunk": spec.care,
        "temperature": spec.base in ("simclr", "moco"),
        "ema_momentum": spec.base in ("byol", "moco"),
        "moco_queue_size": spec.base == "moco",
        "vicreg_weights": spec.base == "vicreg",
        "barlow_lambda": spec.base == "barlow",
    }
    return uses.get(name, True)


def written_value(config: StudyConfig, label: str, key: str) -> Any:
    """The value of knob ``key`` that the study config writes for ``label`` (None where it leaves the default)."""
    section, _, name = key.partition(".")
    options = config.options(label)
    if section == "finetune":
        return options.finetune.get(name, config.finetune.get(name))
    if config.method_kind(label) == CHEAP_LABEL:  # its rough-label run takes fine-tuning keys
        return options.pretrain.get(name, config.finetune.get(name))
    return options.pretrain.get(name, config.pretrain.get(name))


def candidates(config: StudyConfig, tuning: TuningConfig, label: str) -> list[dict[str, Any]]:
    """``trials`` override mappings ``{"pretrain.lr": 3e-4, ...}`` for ``label``; the first is empty (as written).

    The draw depends only on the label, the space and the tuning seeds, so a rerun proposes the same candidates."""
    keys = sorted(k for k in tuning.space if knob_applies(config, label, k))
    grid = [dict(zip(keys, point)) for point in itertools.product(*(tuning.space[k] for k in keys))] if keys else []
    written = {k: written_value(config, label, k) for k in keys}
    grid = [point for point in grid if point != written]  # the method as written is candidate 0 already
    rng = random.Random(f"{label}|{sorted(tuning.space.items())}|{tuning.seeds}")
    drawn = rng.sample(grid, min(len(grid), tuning.trials - 1))
    return [{}] + drawn


def _with_overrides(options: MethodOptions, method: str, overrides: dict[str, Any], budgets: list[int] | None
                    ) -> MethodOptions:
    pretrain, finetune = dict(options.pretrain), dict(options.finetune)
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        (pretrain if section == "pretrain" else finetune)[name] = value
    return dataclasses.replace(options, method=method, budgets=budgets, pretrain=pretrain, finetune=finetune)


def tuning_study_config(config: StudyConfig, tuning: TuningConfig, data_dir: Path | None,
                        only: set[str] | None = None, pretrain_dir: str | None = None
                        ) -> tuple[StudyConfig, dict[str, list[tuple[str, dict]]]]:
    """The small study that scores the candidates, and for each tuned label its (trial label, overrides) pairs.
    ``pretrain_dir``: where the small study keeps its pretraining runs (relative: to its own folder)."""
    trials: dict[str, list[tuple[str, dict]]] = {}
    options: dict[str, MethodOptions] = {}
    for label in tuned_labels(config, tuning):
        if only is not None and label not in only:
            continue
        trials[label] = []
        for k, overrides in enumerate(candidates(config, tuning, label)):
            trial = f"{label}{TRIAL_MARK}{k}"
            options[trial] = _with_overrides(config.options(label), config.method_name(label), overrides, None)
            trials[label].append((trial, overrides))
    labels = [t for pairs in trials.values() for t, _ in pairs]
    if not labels:
        raise PhotosslError("config key 'tuning' selects no method to tune")
    # The study's data folder holds the study's split by now (run_tuning prepares it first): read it as it is, so
    # that the candidates' runs see the very data path, and hence get the very names, of the study's own runs.
    sizes = {} if data_dir is None else {"n_test": None, "n_validation": None}
    study = dataclasses.replace(
        config, name=f"{config.name}-tuning", data=None if data_dir is None else str(data_dir), generate=None,
        **sizes, methods=labels,
        method_options=options, budgets=[tuning.budget], seeds=list(tuning.seeds), figures=False, diagnostics=False,
        at_error=None, reference=labels[0], tuning=None, pretrain_dir=pretrain_dir)
    return study, trials


def choose(trials: dict[str, list[tuple[str, dict]]], records: dict[str, list[dict]], metric: str
           ) -> dict[str, Any]:
    """Per tuned label: every trial's mean validation ``metric`` and the chosen trial (lowest; ties: earliest).

    A label is left untuned (``chosen`` None) until every one of its trials has a finished record for every seed."""
    chosen: dict[str, Any] = {}
    for label, pairs in trials.items():
        rows, complete = [], True
        for trial, overrides in pairs:
            found = records.get(trial, [])
            values = [r["metrics"]["validation"][metric] for r in found if r.get("status") == "ok"
                      and metric in (r.get("metrics") or {}).get("validation", {})]
            mean = sum(values) / len(values) if values and len(values) == len(found) else None
            complete &= mean is not None and bool(found)
            rows.append({"trial": trial, "overrides": overrides, "validation": mean, "seeds_done": len(values)})
        best = min((r for r in rows if r["validation"] is not None), key=lambda r: r["validation"], default=None)
        chosen[label] = {"chosen": best["trial"] if complete and best else None,
                         "overrides": best["overrides"] if complete and best else {}, "trials": rows}
    return chosen


def apply_tuning(config: StudyConfig, chosen: dict[str, Any]) -> StudyConfig:
    """``config`` with each tuned label's chosen overrides merged into its method options."""
    options = dict(config.method_options)
    for label, result in chosen.items():
        if result["chosen"] is None or not result["overrides"]:
            continue
        current = config.options(label)
        options[label] = _with_overrides(current, current.method, result["overrides"], current.budgets)
    return dataclasses.replace(config, method_options=options)


def run_tuning(config: StudyConfig, out: str | Path, data: str | Path | None, run_study: Callable[..., dict],
               echo: Callable[[str], None] | None = None, only: set[str] | None = None) -> dict[str, Any]:
    """Prepare the data, run (or resume) the tuning study in ``out/tuning`` with ``run_study`` (the study runner,
    :func:`photossl.study.runner.run_study`) and write ``out/tuning/chosen.json``."""

    tuning = make_tuning_config(config.tuning)
    tuning.check_methods(config)
    plan = plan_study(dataclasses.replace(config, tuning=None), out, data)
    plan.out.mkdir(parents=True, exist_ok=True)
    log = StudyLog(plan.out / "study.log", echo)
    prepare_data(dataclasses.replace(plan, config=config), data, log)  # with the tuning's label sets
    # The candidates' pretraining runs live with the study's own: a candidate as written reuses the study's finished
    # run, and the study reuses the run of the candidate it chooses (runs are named by the hash of their settings).
    shared = os.path.relpath(plan.pretrain_dir, plan.out / "tuning")
    study, trials = tuning_study_config(config, tuning, plan.data_dir, only, shared)
    n = max(len(pairs) for pairs in trials.values())
    log(f"tuning: {len(trials)} methods, up to {n} candidates each, {tuning.budget} labels, seeds "
        f"{', '.join(map(str, tuning.seeds))}; selection on the validation cells only")
    summary = run_study(study, plan.out / "tuning", plan.data_dir, echo=echo)
    metric = summary.get("metric") or "dos_rel_l1"
    if only is not None:  # the other methods' candidates as they stand on disk: their finished choice holds here too
        _, trials = tuning_study_config(config, tuning, plan.data_dir, None, shared)
    cells = plan.out / "tuning" / "cells"
    records = {trial: [read_cell(cells / f"{Cell(trial, tuning.budget, seed).id}.json") or {"status": "missing"}
                       for seed in tuning.seeds] for pairs in trials.values() for trial, _ in pairs}
    chosen = choose(trials, records, metric)
    write_json_atomic(plan.out / "tuning" / "chosen.json", {
        "budget": tuning.budget, "seeds": tuning.seeds, "trials_per_method": tuning.trials, "space": tuning.space,
        "selection": f"lowest mean validation {metric}", "methods": chosen})
    for label, result in chosen.items():
        log(f"tuning {label}: chose {result['chosen']} {result['overrides'] or '(as written)'}"
            if result["chosen"] else f"tuning {label}: unfinished, left as written")
    return chosen
