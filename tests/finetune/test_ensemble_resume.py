"""An ensemble killed while it trains goes on from each member's latest saved epoch and ends as an uninterrupted
ensemble does; a member's resume file is the one a run alone writes, so a run alone goes on from it too."""

import csv
import json

import pytest
import torch

import photossl.finetune.ensemble as ensemble_module
import photossl.finetune.resume as resume_module
from photossl.finetune import finetune, make_finetune_config
from photossl.finetune.ensemble import finetune_ensemble
from photossl.finetune.resume import RESUME_FILE
from photossl.finetune.stacked_adam import StackedAdam

# 10 labels at batch 8: 2 batches an epoch; 20 labels: 3. Killed during the 7th validation (the third member's
# second epoch), the members have saved 3, 2 and 1 epochs: 6, 6 and 3 steps.
BASE = {"progress": False, "head_dims": [32], "batch_size": 8, "epochs": 5, "max_steps": None, "patience": 0,
        "lr": 3e-3}
CELLS = [(10, 0), (20, 0), (20, 1)]


def _configs(tiny_data):
    return [make_finetune_config({"data": str(tiny_data), **BASE, "budget": b, "seed": s}) for b, s in CELLS]


def _outs(root):
    return [root / f"{b}-{s}" for b, s in CELLS]


def _history(out):
    with (out / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def _assert_same_run(reference, other, rel=1e-4):
    ref, new = (json.loads((d / "metrics.json").read_text()) for d in (reference, other))
    assert new["selected_epoch"] == ref["selected_epoch"] and new["epochs_run"] == ref["epochs_run"]
    assert new["dos_rel_l1"] == pytest.approx(ref["dos_rel_l1"], rel=rel)
    rows_ref, rows_new = _history(reference), _history(other)
    assert [r["lr"] for r in rows_new] == [r["lr"] for r in rows_ref]  # the same schedule, to the bit
    for a, b in zip(rows_ref, rows_new, strict=True):
        assert float(b["train_loss"]) == pytest.approx(float(a["train_loss"]), rel=rel)
        assert float(b["val_dos_rel_l1"]) == pytest.approx(float(a["val_dos_rel_l1"]), rel=rel)
    state_ref = torch.load(reference / "model.pt", weights_only=True)["state"]
    state_new = torch.load(other / "model.pt", weights_only=True)["state"]
    assert list(state_new) == list(state_ref)
    for key, value in state_ref.items():
        torch.testing.assert_close(state_new[key], value, rtol=10 * rel, atol=rel, msg=key)


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
        finetune_ensemble(_configs(tiny_data), _outs(root), overwrite=True)
    monkeypatch.setattr(ensemble_module, "score", score)


def test_a_killed_ensemble_resumes_and_ends_as_an_uninterrupted_one(tiny_data, tmp_path, save_every_epoch,
                                                                     monkeypatch):
    whole = finetune_ensemble(_configs(tiny_data), _outs(tmp_path / "whole"), overwrite=True)
    assert all(not isinstance(r, Exception) for r in whole), whole
    assert not any((out / RESUME_FILE).exists() for out in _outs(tmp_path / "whole"))

    _kill_ensemble(monkeypatch, tiny_data, tmp_path / "killed")
    killed = _outs(tmp_path / "killed")
    saved = [torch.load(out / RESUME_FILE, weights_only=False) for out in killed]
    assert [s["epoch"] for s in saved] == [3, 2, 1]
    assert not any((out / "metrics.json").exists() for out in killed)

    messages = []
    results = finetune_ensemble(_configs(tiny_data), killed, overwrite=True, echo=messages.append)
    for out, epoch, record in zip(killed, (3, 2, 1), results, strict=True):
        assert not isinstance(record, Exception), record
        assert any(m.startswith(f"resuming {out} after epoch {epoch}") for m in messages), messages
        assert record["resumed_at_epoch"] == epoch and record["ensemble_members"] == 3
        assert not (out / RESUME_FILE).exists()
    for reference, other in zip(_outs(tmp_path / "whole"), killed, strict=True):
        _assert_same_run(reference, other)


def test_a_run_alone_goes_on_from_a_members_file(tiny_data, tmp_path, save_every_epoch, monkeypatch):
    _kill_ensemble(monkeypatch, tiny_data, tmp_path / "killed")
    config, out = _configs(tiny_data)[2], _outs(tmp_path / "killed")[2]
    finetune(config, tmp_path / "alone")
    messages = []
    record = finetune(config, out, echo=messages.append)
    assert record["resumed_at_epoch"] == 1 and any(m.startswith(f"resuming {out} after epoch 1") for m in messages)
    _assert_same_run(tmp_path / "alone", out)


def test_stacked_adam_goes_on_from_members_at_different_steps_as_torch_adam():
    torch.manual_seed(0)
    weights = [torch.randn(5, 3) for _ in range(3)]
    rates = [[1e-3, 1e-4], [5e-3, 5e-4], [2e-3, 2e-4]]
    alone = [(w.clone().requires_grad_(), w.clone().requires_grad_()) for w in weights]
    adams = [torch.optim.Adam([{"params": [h], "lr": r[0]}, {"params": [e], "lr": r[1]}], lr=r[0], weight_decay=1e-5)
             for (h, e), r in zip(alone, rates)]
    for m, ((h, e), adam) in enumerate(zip(alone, adams)):  # members 0, 1, 2 have stepped 1, 4 and 2 times
        for _ in range((1, 4, 2)[m]):
            adam.zero_grad()
            h.grad, e.grad = torch.randn(5, 3), torch.randn(5, 3)
            adam.step()
    stacked = {"head.w": torch.stack([h.detach() for h, _ in alone]).requires_grad_(),
               "encoder.w": torch.stack([e.detach() for _, e in alone]).requires_grad_()}
    optimizer = StackedAdam(stacked, {"head.w": 0, "encoder.w": 1}, weight_decay=1e-5)
    for m, ((h, e), adam) in enumerate(zip(alone, adams)):
        optimizer.load_member(m, int(adam.state[h]["step"]),
                              {"head.w": adam.state[h]["exp_avg"], "encoder.w": adam.state[e]["exp_avg"]},
                              {"head.w": adam.state[h]["exp_avg_sq"], "encoder.w": adam.state[e]["exp_avg_sq"]})
    assert optimizer.steps == [1, 4, 2]
    for step in range(3):
        grads = torch.randn(3, 5, 3)
        optimizer.zero_grad()
        stacked["head.w"].grad, stacked["encoder.w"].grad = grads.clone(), 2 * grads
        optimizer.step(rates)
        for m, ((h, e), adam) in enumerate(zip(alone, adams)):
            adam.zero_grad()
            h.grad, e.grad = grads[m].clone(), 2 * grads[m]
            adam.step()
            assert torch.equal(stacked["head.w"][m], h) and torch.equal(stacked["encoder.w"][m], e), step
    steps, exp_avg, exp_avg_sq = optimizer.member_state(1)
    assert steps == 7 and torch.equal(exp_avg["head.w"], adams[1].state[alone[1][0]]["exp_avg"])
    with pytest.raises(ValueError, match="not of these parameters"):
        optimizer.load_member(0, 1, {"other": torch.zeros(5, 3)}, {"other": torch.zeros(5, 3)})


def test_a_member_whose_file_lacks_its_optimiser_state_fails_alone(tiny_data, tmp_path, save_every_epoch,
                                                                   monkeypatch):
    from photossl.errors import PhotosslError

    _kill_ensemble(monkeypatch, tiny_data, tmp_path / "killed")
    killed = _outs(tmp_path / "killed")
    saved = torch.load(killed[1] / RESUME_FILE, weights_only=False)
    saved["optimizer"]["state"] = {}
    torch.save(saved, killed[1] / RESUME_FILE)
    results = finetune_ensemble(_configs(tiny_data), killed, overwrite=True)
    assert isinstance(results[1], PhotosslError) and "holds no optimiser state" in str(results[1])
    assert (killed[1] / RESUME_FILE).exists() and not (killed[1] / "metrics.json").exists()
    for i in (0, 2):
        assert not isinstance(results[i], Exception), results[i]
        assert results[i]["ensemble_members"] == 2 and not (killed[i] / RESUME_FILE).exists()
