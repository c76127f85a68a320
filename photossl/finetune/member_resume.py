"""An ensemble member's training state in the resume file a run alone writes (:mod:`photossl.finetune.resume`):
a killed ensemble goes on from each member's latest saved epoch, and a run alone can go on from a member's file (or
a member from a run alone's).

The file holds a ``torch.optim.Adam`` state dict over the member's own parameters; the stacked optimiser's row of the
member is converted to it and back (:class:`~photossl.finetune.stacked_adam.StackedAdam`).
"""

from __future__ import annotations

from typing import Any

import torch

from photossl.errors import PhotosslError
from photossl.finetune.config import FinetuneConfig
from photossl.finetune.resume import EpochState, ResumeFile
from photossl.finetune.trainer import NetworkSetup, make_optimizer

# (step count, first moments, second moments) by parameter name, as StackedAdam.member_state returns them.
Moments = tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor]]


def _names(run: NetworkSetup) -> dict[int, str]:
    return {id(param): name for name, param in run.model.named_parameters()}


def restore_member(config: FinetuneConfig, run: NetworkSetup, rates: torch.optim.Optimizer, schedule: Any,
                   resume: ResumeFile) -> tuple[EpochState, Moments] | None:
    """Load a saved state of this run into ``run`` (weights, generator), ``rates`` and ``schedule``; where it
    stands and the Adam moments to give the stacked optimiser. None (nothing changed) without a usable file."""
    adam = make_optimizer(config, run.groups)
    saved = resume.restore(run.model, adam, schedule, run.generator)
    if saved is None:
        return None
    names = _names(run)
    steps: set[int] = set()
    exp_avg: dict[str, torch.Tensor] = {}
    exp_avg_sq: dict[str, torch.Tensor] = {}
    for rate_group, group in zip(rates.param_groups, adam.param_groups, strict=True):
        rate_group["lr"] = group["lr"]
        for param in group["params"]:
            state = adam.state.get(param)
            if not state:
                raise PhotosslError(f"{resume.path} holds no optimiser state for {names[id(param)]}; remove it "
                                    "to start this run again")
            steps.add(int(state["step"]))
            exp_avg[names[id(param)]], exp_avg_sq[names[id(param)]] = state["exp_avg"], state["exp_avg_sq"]
    if len(steps) != 1:
        raise PhotosslError(f"{resume.path}: its parameters were stepped unequally ({sorted(steps)}); remove it "
                            "to start this run again")
    run.resumed_at_epoch, run.elapsed_before_s = saved.epoch, saved.elapsed_s
    return saved, (steps.pop(), exp_avg, exp_avg_sq)


def save_member(config: FinetuneConfig, run: NetworkSetup, resume: ResumeFile, state: EpochState,
                model_state: dict[str, torch.Tensor], moments: Moments, rates: torch.optim.Optimizer,
                schedule: Any) -> None:
    """Write the member's resume file: ``state``, its weights ``model_state``, its Adam ``moments`` as a run alone's
    Adam would hold them, its learning rates (``rates``) and schedule, its generator."""
    steps, exp_avg, exp_avg_sq = moments
    adam = make_optimizer(config, run.groups)
    names = _names(run)
    for rate_group, group in zip(rates.param_groups, adam.param_groups, strict=True):
        group["lr"] = rate_group["lr"]
        for param in group["params"]:
            name = names[id(param)]
            adam.state[param] = {"step": torch.tensor(float(steps)), "exp_avg": exp_avg[name],
                                 "exp_avg_sq": exp_avg_sq[name]}
    resume.save(state, model_state, adam.state_dict(), None if schedule is None else schedule.state_dict(),
                run.generator)
