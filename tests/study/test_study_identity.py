"""A study folder stays resumable: the names of pretraining runs and the fingerprints that decide whether a finished
cell is reused are pinned for fixed configs, and execution settings never move them."""

import dataclasses

import pytest

from photossl.finetune import FinetuneConfig
from photossl.study import make_study_config, plan_study
from photossl.study.plan import cell_fingerprint

# pipelines/dos-quick.yaml as it was when these values were recorded (the file may change; these must not).
DOS_QUICK = {
    "name": "dos-quick", "data": "bundled", "split_seed": 0, "n_test": 102, "n_validation": 51,
    "methods": ["supervised", "simclr", "essl", "care", "ridge", "kernel-ridge"],
    "budgets": [50, 100, 200], "seeds": [0, 1],
    "pretrain": {"encoder": "small", "policy": "essl-gpm", "epochs": 20, "batch_size": 64, "optimizer": "adam",
                 "lr": 0.001, "weight_decay": 0.0, "warmup_epochs": 1, "probe_every": 5, "probe_train": 300,
                 "lambda_predict": 5.0, "lambda_care": 0.9, "care_chunk": 16},
    "finetune": {"target": "dos_eldiff", "mode": "full", "head": "mlp", "head_dims": [512, 512], "epochs": 50,
                 "patience": 15, "batch_size": 16, "lr": 0.001, "encoder_lr_scale": 0.1, "schedule": "cosine",
                 "weight_decay": 1.0e-5, "augment": ["translate", "d4"]},
    "diagnostics": True, "diagnostics_cells": 384, "reference": "supervised", "threads": 1,
}
VARIANT = {  # per-label options, a step-cap mapping, another target, a cheap-label method
    "methods": ["supervised", "simclr", "ess2", "ridge", "cheap"],
    "method_options": {"ess2": {"method": "essl", "pretrain": {"lambda_predict": 1.0},
                                "finetune": {"mode": "frozen", "head": "linear"}, "budgets": [100]},
                       "cheap": {"method": "cheap-label", "rough": {"grid_size": 8}, "pretrain": {"epochs": 3}}},
    "finetune": {"max_steps": {0: 100, 150: 200}, "target": "dos"},
}
SHA = "ab" * 32  # a pretraining checkpoint's sha256


def _plan(**overrides):
    return plan_study(make_study_config({**DOS_QUICK, **overrides}), "runs/fp-probe")


def _fingerprints(plan, ids, checkpoint=None):
    for job in plan.jobs.values():
        job.checkpoint_sha256 = checkpoint
    cells = {cell.id: cell for cell in plan.cells}
    return {i: cell_fingerprint(plan, cells[i]) for i in ids}


def test_dos_quick_keeps_its_run_names_and_cell_fingerprints():
    plan = _plan()
    assert {name: job.labels for name, job in plan.jobs.items()} == {
        "simclr-43a8d5b4": ["simclr"], "essl-1f556e4a": ["essl"], "care-5788d0d9": ["care"]}
    assert _fingerprints(plan, ["supervised__b50__s0", "simclr__b100__s1", "ridge__b200__s0",
                                "kernel-ridge__b50__s1"]) == {
        "supervised__b50__s0": "7bd47129dcb70c153554be7e9bbdd5972a977cb8103f2b8c5bed6461116ff560",
        "simclr__b100__s1": "23ec1253f059e45294157f8444fe7ab1d9112e381592991408a5f749123bae53",
        "ridge__b200__s0": "4ce1878da2234aa0031e27c3abc8059a5f2fce54e981ad31e52042702e8fb295",
        "kernel-ridge__b50__s1": "42b216b4d0d732bbb273f7b769ff980f7821ffc21ddfe90b7781ef57aa4b135c",
    }
    assert _fingerprints(plan, ["simclr__b100__s1"], SHA) == {
        "simclr__b100__s1": "7ecb9fc9c7ebb97e9dd0ca64831246e09c0b386ce12019bb3139b77033c5a741"}


def test_method_options_and_cheap_label_keep_theirs():
    # the rough-label run is named by the data folder's split, not the sizes asked of it, as the tuning study's
    # candidates are (test_cheap_label.py): the values below are those of that naming
    plan = _plan(**VARIANT)
    assert sorted(plan.jobs) == ["cheap-label-876e5f90", "essl-40e72ca3", "simclr-43a8d5b4"]
    ids = ["cheap__b100__s0", "ess2__b100__s0", "supervised__b200__s1"]
    assert _fingerprints(plan, ids) == {
        "cheap__b100__s0": "89381bd15ed2f4ac075ce1a248d45a3095347f620236a70cdb71820db4f0df6f",
        "ess2__b100__s0": "dad9b32b434e206357dbd4cc11a309dd3fb7df4e3c46405967d7105a2c174988",
        "supervised__b200__s1": "bccb90eb877efd07d269ff1d3ec473a843b2ad86e2a920d2d8aa556764235d89",
    }
    assert _fingerprints(plan, ids[:2], SHA) == {
        "cheap__b100__s0": "b0ae1aa938060595442a4e1c588c1f507f1f2597c08f47edc8aa1f22a68d25d1",
        "ess2__b100__s0": "c55d46a50856eef4c66cb6bb66f8cc9ce6399fb627fdd1bfe3ddaac1447031b1",
    }


@pytest.mark.parametrize("change", [
    {"device": "cpu"}, {"threads": 2}, {"progress": False}, {"finetune_ensemble": 4},
    {"finetune": {**DOS_QUICK["finetune"], "eval_batch_size": 64}},
    {"pretrain": {**DOS_QUICK["pretrain"], "workers": 2, "probe_every": 1, "checkpoint_every": 5}},
])
def test_execution_settings_move_no_run_and_no_cell(change):
    before, after = _plan(), _plan(**change)
    assert sorted(before.jobs) == sorted(after.jobs)
    assert [cell_fingerprint(before, c) for c in before.cells] == [cell_fingerprint(after, c) for c in after.cells]


def test_each_cell_holds_its_typed_config():
    plan = _plan()
    assert len(plan.cell_configs) == len(plan.cells) == 36
    for cell in plan.cells:
        config = plan.cell_configs[cell]
        assert isinstance(config, FinetuneConfig)
        assert (config.label, config.budget, config.seed) == (cell.label, cell.budget, cell.seed)
    simclr = plan.cell_configs[plan.cells[1]]
    assert simclr.pretrained == "runs/fp-probe/pretrain/simclr-43a8d5b4"
    assert {f.name for f in dataclasses.fields(FinetuneConfig) if f.metadata.get("execution")} == {
        "device", "threads", "eval_batch_size", "progress"}
