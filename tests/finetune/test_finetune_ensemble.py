"""Runs fine-tuned together as one stacked network equal the same runs fine-tuned alone: same initial weights, same
batches and augmentations, same steps, learning rates, early stopping and selection, up to float rounding."""

import csv
import json

import pytest
import torch

from photossl.finetune import finetune, make_finetune_config
from photossl.finetune.ensemble import finetune_ensemble

# 10 and 20 labels at batch 8 end every epoch with a short batch (2 and 4 cells); the step cap gives them 2 and 4
# epochs of a cosine schedule.
BASE = {"progress": False, "head_dims": [32], "batch_size": 8, "epochs": 6, "max_steps": {0: 4, 15: 12},
        "patience": 0, "lr": 3e-3}
CELLS = [(10, 0), (10, 1), (20, 0), (20, 1)]


def _configs(tiny_data, cells, **values):
    return [make_finetune_config({"data": str(tiny_data), **BASE, "budget": b, "seed": s, **values})
            for b, s in cells]


def _history(out):
    with (out / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def _assert_same_run(alone_dir, together_dir, alone, together, rel=1e-4):
    """Same epochs, selection, schedule; metrics within ``rel``; the selected weights within float tolerance."""
    assert together["selected_epoch"] == alone["selected_epoch"]
    assert together["epochs_run"] == alone["epochs_run"] and together["epochs_planned"] == alone["epochs_planned"]
    assert together["dos_rel_l1"] == pytest.approx(alone["dos_rel_l1"], rel=rel)
    assert together["validation"]["dos_rel_l1"] == pytest.approx(alone["validation"]["dos_rel_l1"], rel=rel)
    rows_alone, rows_together = _history(alone_dir), _history(together_dir)
    assert [r["lr"] for r in rows_together] == [r["lr"] for r in rows_alone]  # the same schedule, to the bit
    for a, t in zip(rows_alone, rows_together):
        assert float(t["train_loss"]) == pytest.approx(float(a["train_loss"]), rel=rel)
        assert float(t["val_dos_rel_l1"]) == pytest.approx(float(a["val_dos_rel_l1"]), rel=rel)
    state_alone = torch.load(alone_dir / "model.pt", weights_only=True)["state"]
    state_together = torch.load(together_dir / "model.pt", weights_only=True)["state"]
    assert list(state_together) == list(state_alone)
    for key, value in state_alone.items():
        assert state_together[key].dtype == value.dtype and state_together[key].shape == value.shape
        torch.testing.assert_close(state_together[key], value, rtol=10 * rel, atol=rel, msg=key)


@pytest.mark.parametrize("start", ["scratch", "pretrained", "frozen"])
def test_members_equal_the_same_runs_alone(tiny_data, tiny_run, tmp_path, start):
    values = {"scratch": {}, "pretrained": {"pretrained": str(tiny_run)},
              "frozen": {"pretrained": str(tiny_run), "mode": "frozen"}}[start]
    alone = [finetune(config, tmp_path / f"alone-{b}-{s}") for config, (b, s) in
             zip(_configs(tiny_data, CELLS, **values), CELLS)]
    together = finetune_ensemble(_configs(tiny_data, CELLS, **values),
                                 [tmp_path / f"together-{b}-{s}" for b, s in CELLS])
    for (b, s), a, t in zip(CELLS, alone, together):
        assert not isinstance(t, Exception), t
        assert t["ensemble_members"] == len(CELLS)
        _assert_same_run(tmp_path / f"alone-{b}-{s}", tmp_path / f"together-{b}-{s}", a, t)
        # every file a run alone writes, with the same keys
        names = {p.name for p in (tmp_path / f"alone-{b}-{s}").iterdir()}
        assert {p.name for p in (tmp_path / f"together-{b}-{s}").iterdir()} == names
        metrics = json.loads((tmp_path / f"together-{b}-{s}" / "metrics.json").read_text())
        assert set(metrics) == set(a) | {"ensemble_members"}
        assert json.loads((tmp_path / f"together-{b}-{s}" / "indices.json").read_text()) == json.loads(
            (tmp_path / f"alone-{b}-{s}" / "indices.json").read_text())


def test_a_member_that_stops_early_leaves_the_others_as_they_were(tiny_data, tmp_path):
    # seed 1 at a high constant rate with patience 1 stops after a few epochs; the others run all their epochs
    early = {"lr": 0.05, "schedule": "constant", "patience": 1, "epochs": 12, "max_steps": None}
    configs = _configs(tiny_data, CELLS)
    configs[1] = make_finetune_config({"data": str(tiny_data), **BASE, "budget": 10, "seed": 1, **early})
    together = finetune_ensemble(configs, [tmp_path / f"together-{b}-{s}" for b, s in CELLS])
    alone_early = finetune(make_finetune_config({"data": str(tiny_data), **BASE, "budget": 10, "seed": 1, **early}),
                           tmp_path / "alone-10-1")
    assert together[1]["stopped_early"] and together[1]["epochs_run"] < 12
    # at that rate rounding differences grow from epoch to epoch: a looser match for this member
    _assert_same_run(tmp_path / "alone-10-1", tmp_path / "together-10-1", alone_early, together[1], rel=1e-2)
    for i in (0, 2, 3):
        b, s = CELLS[i]
        alone = finetune(_configs(tiny_data, [(b, s)])[0], tmp_path / f"alone-{b}-{s}")
        _assert_same_run(tmp_path / f"alone-{b}-{s}", tmp_path / f"together-{b}-{s}", alone, together[i])


def test_a_failing_member_fails_alone(tiny_data, tmp_path):
    configs = _configs(tiny_data, [(10, 0), (20, 0)])
    configs.append(make_finetune_config({"data": str(tiny_data), **BASE, "budget": 10_000, "seed": 0}))
    outs = [tmp_path / "a", tmp_path / "b", tmp_path / "too-many"]
    results = finetune_ensemble(configs, outs)
    assert not isinstance(results[0], Exception) and not isinstance(results[1], Exception)
    assert results[0]["ensemble_members"] == 2
    assert "exceeds" in str(results[2]) or "budget" in str(results[2])
    assert not outs[2].exists()


def test_a_member_whose_loss_diverges_fails_without_disturbing_the_others(tiny_data, tmp_path, monkeypatch):
    from photossl.errors import PhotosslError
    from photossl.finetune import ensemble

    real = ensemble.setup_network

    def setup(config, data, device, echo):  # seed 1 regresses NaN targets: its loss is NaN from the first step
        run = real(config, data, device, echo)
        if config.seed == 1:
            forward = run.scaler.forward
            run.scaler.forward = lambda y: forward(y) * float("nan")
        return run

    monkeypatch.setattr(ensemble, "setup_network", setup)
    cells = [(10, 0), (10, 1), (20, 0)]
    together = finetune_ensemble(_configs(tiny_data, cells), [tmp_path / f"together-{b}-{s}" for b, s in cells])
    assert isinstance(together[1], PhotosslError) and "the loss became nan at epoch 1" in str(together[1])
    assert not (tmp_path / "together-10-1").exists()
    for i in (0, 2):
        b, s = cells[i]
        alone = finetune(_configs(tiny_data, [(b, s)])[0], tmp_path / f"alone-{b}-{s}")
        _assert_same_run(tmp_path / f"alone-{b}-{s}", tmp_path / f"together-{b}-{s}", alone, together[i])
