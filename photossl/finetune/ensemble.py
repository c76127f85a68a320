"""Fine-tune several runs of one network as one stacked network: e.g. the seeds and label budgets of one method of a
study, which share a pretrained encoder (or an architecture, from scratch).

Each member keeps everything a run alone has: its initial weights, its labelled cells, batch order and augmentations
(its own generator), its Adam state, its learning-rate schedule over its own epochs (``max_steps`` included), its
early stopping and its selection on the validation split. Members are computed together by
:class:`~photossl.finetune.stacked.StackedNetwork`, so a member computes what its own ``photossl finetune`` run would,
up to float rounding, while the per-operation cost is shared. A member whose batch is shorter (the last batch of an
epoch) is computed with the others of that length; a member that has finished (or failed) leaves the stack.
Each member writes the folder a run alone writes; ``metrics.json`` adds ``ensemble_members`` (how many runs were
stacked together) and its ``wall_time_s`` is the run's share of the time of the whole call. A member saves its
state as a run alone does (``FT/resume.pt``, :mod:`photossl.finetune.member_resume`): an ensemble killed while it
trains goes on from each member's latest saved epoch when started again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from photossl.errors import PhotosslError
from photossl.files import WriteError
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.data import FinetuneData
from photossl.finetune.member_resume import Moments, restore_member, save_member
from photossl.finetune.outputs import complete_run, prepare_output, refuse_finished
from photossl.finetune.resume import RESUME_FILE, EpochState, ResumeFile
from photossl.finetune.stacked import StackedNetwork, can_stack
from photossl.finetune.stacked_adam import StackedAdam
from photossl.finetune.targets import score
from photossl.finetune.trainer import NetworkSetup, finish_network, make_schedule, setup_network, train_network
from photossl.runtime import select_device, torch_threads


@dataclass
class _Member:
    """One run of the ensemble and where it stands."""

    slot: int
    config: FinetuneConfig
    data: FinetuneData
    out: Path
    created: bool
    device: torch.device
    run: NetworkSetup
    rates: torch.optim.Optimizer  # holds no weights: it only carries the run's learning rates through its schedule
    schedule: Any
    resume: ResumeFile
    epoch: int = 0
    position: int = 0
    order: torch.Tensor | None = None
    total: float = 0.0
    tick: float = 0.0
    best: tuple = (math.inf, 0, None, None)
    history: list = field(default_factory=list)
    error: Exception | None = None
    stacked_with: int = 1  # members of its stacked network, itself included
    moments: Moments | None = None  # Adam state restored from the resume file, for the stacked optimiser
    started: float = 0.0  # when the stacked loop began

    @property
    def n(self) -> int:
        return int(self.run.train.images.shape[0])


def finetune_ensemble(configs: list[FinetuneConfig], outs: list[str | Path], overwrite: bool = False, echo=None,
                      dataset=None) -> list[dict[str, Any] | Exception]:
    """Fine-tune every network config of ``configs`` into its folder of ``outs``, stacking those that share an
    architecture; per config, the record :func:`photossl.finetune.finetune` would return, or the exception that
    stopped that run (a failed run never stops the others; a failed write is raised). ``dataset``: the configs'
    dataset already opened (:func:`photossl.finetune.data.open_target_dataset`)."""
    echo = echo or (lambda message: None)
    results: list[Any] = [None] * len(configs)
    members: list[_Member] = []
    started = time.perf_counter()
    try:
        with torch_threads(configs[0].threads if configs else None):
            for slot, (config, out) in enumerate(zip(configs, outs)):
                try:
                    members.append(_prepare(slot, config, Path(out), overwrite, echo, dataset))
                except WriteError:
                    raise
                except Exception as err:  # noqa: BLE001 - reported for this run, the others go on
                    results[slot] = err
            for group in _stackable_groups(members):
                for member in group:
                    member.stacked_with = len(group)
                if len(group) > 1:
                    _train_stacked(group)
                else:
                    _train_alone(group[0])
            shared = (time.perf_counter() - started) / max(len(members), 1)
            for member in members:
                results[member.slot] = _finish(member, shared, echo)
    except BaseException:
        for member in members:
            if member.created and results[member.slot] is None:
                _remove_empty(member.out)
        raise
    finally:
        for member in members:
            member.data.close()
    return results


def _prepare(slot: int, config: FinetuneConfig, out: Path, overwrite: bool, echo, dataset) -> _Member:
    config.validate()
    if config.baseline != "none":
        raise PhotosslError("an ensemble fine-tunes networks, not classical baselines")
    refuse_finished(out, overwrite)
    data = FinetuneData(config, dataset=dataset)
    created = not out.exists()
    try:
        prepare_output(out, overwrite)
        device = select_device(config.device)
        run = setup_network(config, data, device, echo)
    except BaseException:
        data.close()
        if created:
            _remove_empty(out)
        raise
    # The same schedule a run alone builds, on weightless groups: it yields the run's learning rate of each epoch.
    rates = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": group["lr"]}
                             for group in run.groups], lr=config.lr)
    member = _Member(slot, config, data, out, created, device, run, rates, make_schedule(config, rates, run.epochs),
                     ResumeFile(out / RESUME_FILE, config, echo=echo))
    member.best = run.start_best or member.best
    return member


def _stackable_groups(members: list[_Member]) -> list[list[_Member]]:
    """Members that can share one stacked network: same device, architecture, mode and weight decay."""
    groups: dict[Any, list[_Member]] = {}
    for member in members:
        model = member.run.model
        key = (str(member.device), repr(model), member.config.mode, member.config.weight_decay,
               tuple((k, tuple(v.shape), v.dtype) for k, v in model.state_dict().items()))
        groups.setdefault(key if can_stack(model) else ("alone", member.slot), []).append(member)
    return list(groups.values())


def _train_alone(member: _Member) -> None:
    try:
        member.best, member.history = train_network(member.config, member.run, member.device, member.resume)
    except WriteError:
        raise
    except Exception as err:  # noqa: BLE001
        member.error = err


def _finish(member: _Member, shared_s: float, echo) -> dict[str, Any] | Exception:
    if member.error is not None:
        if member.created:
            _remove_empty(member.out)
        return member.error
    tick = time.perf_counter()
    try:
        record = finish_network(member.config, member.data, member.run, member.best, member.history, member.out,
                                member.device, echo)
        record["ensemble_members"] = member.stacked_with
        record = complete_run(member.config, member.data, record, member.out,
                              shared_s + time.perf_counter() - tick + member.run.elapsed_before_s)
        member.resume.path.unlink(missing_ok=True)  # after metrics.json: a kill in between only resumes again
        return record
    except WriteError:
        raise
    except Exception as err:  # noqa: BLE001
        return err


def _remove_empty(out: Path) -> None:
    try:
        out.rmdir()
    except OSError:
        pass


# ------------------------------------------------------------------------------------------------- the stacked loop
def _train_stacked(members: list[_Member]) -> None:
    """Train ``members`` as one stacked network until each has finished its epochs, stopped early or failed."""
    device = members[0].device
    for member in members:
        _restore(member)
    members = [m for m in members if m.error is None]
    if not members:
        return
    for member in members:
        member.stacked_with = len(members)
    net = StackedNetwork([m.run.model for m in members]).to(device)
    group_of = {name: 0 if name.startswith("head.") else 1 for name in net.trainable()}
    optimizer = StackedAdam(net.trainable(), group_of, members[0].config.weight_decay)
    for row, member in enumerate(members):
        if member.moments is not None:
            optimizer.load_member(row, *member.moments)
            member.moments = None
    started = time.perf_counter()
    for member in members:
        member.started = started
    active = list(members)
    while active:
        batches = [_next_batch(m) for m in active]
        optimizer.zero_grad()
        by_size: dict[int, list[int]] = {}
        for row, (x, _) in enumerate(batches):
            by_size.setdefault(int(x.shape[0]), []).append(row)
        losses: list[float] = [math.nan] * len(active)
        for rows in by_size.values():
            x = torch.stack([batches[r][0] for r in rows]).to(device, non_blocking=True)
            y = torch.stack([batches[r][1] for r in rows]).to(device, non_blocking=True)
            loss = (net.forward(x, True, rows).float() - y).pow(2).mean(dim=(1, 2))  # each member's MSE
            values = loss.detach().tolist()  # one transfer for the group, not one per member
            finite = [math.isfinite(v) for v in values]
            for i, row in enumerate(rows):
                losses[row] = values[i]
                if not finite[i]:
                    member = active[row]
                    member.error = PhotosslError(f"the loss became {values[i]} at epoch {member.epoch + 1}; lower --lr")
            if all(finite):
                loss.sum().backward()
            elif any(finite):  # a member's loss only reaches its own weights
                loss[torch.tensor(finite, device=loss.device)].sum().backward()
        optimizer.step([[group["lr"] for group in m.rates.param_groups] for m in active])
        ending = []
        for row, member in enumerate(active):
            if member.error is None:
                size = int(batches[row][0].shape[0])
                member.total += losses[row] * size
                member.position += size
                if member.position >= member.n:
                    ending.append(row)
        if ending:
            _end_epochs(net, optimizer, [active[r] for r in ending], ending, device)
        keep = [row for row, m in enumerate(active) if m.error is None and not _finished(m)]
        if len(keep) < len(active):
            active = [active[row] for row in keep]
            if active:
                net.keep(keep)
                optimizer.keep(keep, net.trainable())


def _restore(member: _Member) -> None:
    """Go on from the member's resume file, when it holds a state of this run."""
    try:
        restored = restore_member(member.config, member.run, member.rates, member.schedule, member.resume)
    except Exception as err:  # noqa: BLE001 - this run fails, the others go on
        member.error = err
        return
    if restored is not None:
        saved, member.moments = restored
        member.epoch, member.best, member.history = saved.epoch, saved.best, saved.history


def _next_batch(member: _Member) -> tuple[torch.Tensor, torch.Tensor]:
    """The member's next (augmented images, standardised targets), drawn as a run alone draws them."""
    run = member.run
    if member.position == 0:
        member.order = torch.randperm(member.n, generator=run.generator)
        member.total, member.tick = 0.0, time.perf_counter()
    idx = member.order[member.position: member.position + member.config.batch_size]
    x, y = run.augment(run.train.images[idx], run.train.targets[idx], run.generator)
    return x, run.scaler.forward(y)


def _end_epochs(net: StackedNetwork, optimizer: StackedAdam, members: list[_Member], rows: list[int],
                device: torch.device) -> None:
    """Close an epoch of ``members`` (stack rows ``rows``): schedule, validation, selection, early stopping, and
    the resume file when one is due."""
    rates = []
    for member in members:
        rates.append(member.rates.param_groups[0]["lr"])
        if member.schedule is not None:
            member.rates.step()  # weightless: keeps the schedule's bookkeeping as a run alone has it
            member.schedule.step()
    images = torch.stack([m.run.val.images for m in members])
    chunk = members[0].config.eval_batch_size
    with torch.inference_mode():
        outputs = torch.cat([net.forward(images[:, i: i + chunk].to(device), False, rows)
                             for i in range(0, images.shape[1], chunk)], dim=1)
    for j, member in enumerate(members):
        run = member.run
        primary = run.target.primary_metric
        pred = run.scaler.inverse(outputs[j].float()).double().cpu()
        metrics = score(run.target, pred.numpy(), run.val.targets.double().numpy())
        error = metrics[primary]
        member.epoch += 1
        if error < member.best[0] or member.best[2] is None:
            member.best = (error, member.epoch, net.member_state(rows[j]), metrics)
        member.history.append({"epoch": member.epoch, "lr": rates[j], "train_loss": member.total / member.n,
                               f"val_{primary}": error, "best_epoch": member.best[1],
                               "epoch_time_s": round(time.perf_counter() - member.tick, 4)})
        member.position = 0
        if not _finished(member) and member.resume.due():
            # the member's share of the stack's time, as its wall_time_s is
            elapsed = run.elapsed_before_s + (time.perf_counter() - member.started) / member.stacked_with
            save_member(member.config, run, member.resume, EpochState(member.epoch, member.best, member.history,
                                                                      elapsed),
                        net.member_state(rows[j]), optimizer.member_state(rows[j]), member.rates, member.schedule)


def _finished(member: _Member) -> bool:
    if member.epoch >= member.run.epochs:
        return True
    patience = member.config.patience
    return bool(patience) and member.position == 0 and member.epoch > 0 and member.epoch - member.best[1] >= patience
