"""Runs fine-tuned together as one stacked network equal the same runs fine-tuned alone: same initial weights, same
batches and augmentations, same steps, learning rates, early stopping and selection, up to float rounding. An
ensemble killed while it trains goes on from each member's latest saved epoch and ends as an uninterrupted one; a
member's resume file is the one a run alone writes."""

import csv
import json

import pytest
import torch

import photossl.finetune.ensemble as ensemble_module
import photossl.finetune.resume as resume_module
from photossl.errors import PhotosslError
from photossl.finetune import finetune, make_finetune_config
from photossl.finetune.ensemble import finetune_ensemble
from photossl.finetune.resume import RESUME_FILE

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


# ------------------------------------------------------------------------------------------------- after a kill
# 10 labels at batch 8: 2 batches an epoch; 20 labels: 3. Killed during the 7th validation (the third member's
# second epoch), the members have saved 3, 2 and 1 epochs: 6, 6 and 3 steps.
RESUME_BASE = {**BASE, "epochs": 5, "max_steps": None}
RESUME_CELLS = [(10, 0), (20, 0), (20, 1)]


def _resume_configs(tiny_data):
    return [make_finetune_config({"data": str(tiny_data), **RESUME_BASE, "budget": b, "seed": s})
            for b, s in RESUME_CELLS]


def _outs(root):
    return [root / f"{b}-{s}" for b, s in RESUME_CELLS]


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture
def save_every_epoch(monkeypatch):
    monkeypatch.setattr(resume_module, "RESUME_EVERY_S", 0.0)


def _kill_ensemble(monkeypatch, tiny_data, root, call: int = 7) -> None:
    """Run the ensemble into ``root`` and stop it during the ``call``-th validation, as a kill would."""
    score, calls = ensemble_module.score, []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return score(*args, **kwargs)

    monkeypatch.setattr(ensemble_module, "score", dying)
    with pytest.raises(KeyboardInterrupt):
        finetune_ensemble(_resume_configs(tiny_data), _outs(root), overwrite=True)
    monkeypatch.setattr(ensemble_module, "score", score)


def test_a_killed_ensemble_resumes_and_ends_as_an_uninterrupted_one(tiny_data, tmp_path, save_every_epoch,
                                                                     monkeypatch):
    whole = finetune_ensemble(_resume_configs(tiny_data), _outs(tmp_path / "whole"), overwrite=True)
    assert all(not isinstance(r, Exception) for r in whole), whole
    assert not any((out / RESUME_FILE).exists() for out in _outs(tmp_path / "whole"))

    _kill_ensemble(monkeypatch, tiny_data, tmp_path / "killed")
    killed = _outs(tmp_path / "killed")
    assert [torch.load(out / RESUME_FILE, weights_only=False)["epoch"] for out in killed] == [3, 2, 1]
    assert not any((out / "metrics.json").exists() for out in killed)

    messages = []
    results = finetune_ensemble(_resume_configs(tiny_data), killed, overwrite=True, echo=messages.append)
    for out, epoch, record in zip(killed, (3, 2, 1), results, strict=True):
        assert not isinstance(record, Exception), record
        assert any(m.startswith(f"resuming {out} after epoch {epoch}") for m in messages), messages
        assert record["resumed_at_epoch"] == epoch and record["ensemble_members"] == 3
        assert not (out / RESUME_FILE).exists()
    for reference, other in zip(_outs(tmp_path / "whole"), killed, strict=True):
        _assert_same_run(reference, other, _metrics(reference), _metrics(other))


def test_a_run_alone_goes_on_from_a_members_file(tiny_data, tmp_path, save_every_epoch, monkeypatch):
    _kill_ensemble(monkeypatch, tiny_data, tmp_path / "killed")
    config, out = _resume_configs(tiny_data)[2], _outs(tmp_path / "killed")[2]
    alone = finetune(config, tmp_path / "alone")
    messages = []
    record = finetune(config, out, echo=messages.append)
    assert record["resumed_at_epoch"] == 1 and any(m.startswith(f"resuming {out} after epoch 1") for m in messages)
    _assert_same_run(tmp_path / "alone", out, alone, record)


def test_a_member_whose_file_lacks_its_optimiser_state_fails_alone(tiny_data, tmp_path, save_every_epoch,
                                                                   monkeypatch):
    _kill_ensemble(monkeypatch, tiny_data, tmp_path / "killed")
    killed = _outs(tmp_path / "killed")
    saved = torch.load(killed[1] / RESUME_FILE, weights_only=False)
    saved["optimizer"]["state"] = {}
    torch.save(saved, killed[1] / RESUME_FILE)
    results = finetune_ensemble(_resume_configs(tiny_data), killed, overwrite=True)
    assert isinstance(results[1], PhotosslError) and "holds no optimiser state" in str(results[1])
    assert (killed[1] / RESUME_FILE).exists() and not (killed[1] / "metrics.json").exists()
    for i in (0, 2):
        assert not isinstance(results[i], Exception), results[i]
        assert results[i]["ensemble_members"] == 2 and not (killed[i] / RESUME_FILE).exists()
