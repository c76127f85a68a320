"""Learning rate per iteration: linear warm-up, then a half cosine down to a final fraction of the base rate."""

from __future__ import annotations

import math

import torch

from photossl.errors import PhotosslError


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base_lr: float, final_lr: float = 0.0) -> float:
    """The learning rate of iteration ``step`` (0-based) of ``total_steps``.

    Warm-up: ``base_lr * (step + 1) / warmup_steps`` for ``step < warmup_steps`` (the first step already moves).
    Then ``final_lr + (base_lr - final_lr) * (1 + cos(pi * t)) / 2`` with ``t = (step - warmup_steps) /
    (total_steps - warmup_steps)`` going from 0 to (almost) 1, as E-SSL's per-iteration cosine does.
    Steps past the end keep ``final_lr``.
    """
    if total_steps < 1 or warmup_steps < 0:
        raise PhotosslError(f"need total_steps >= 1 and warmup_steps >= 0, got {total_steps}, {warmup_steps}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0 or step >= total_steps:
        return final_lr if step >= total_steps else base_lr
    t = (step - warmup_steps) / decay_steps
    return final_lr + (base_lr - final_lr) * 0.5 * (1.0 + math.cos(math.pi * t))


class WarmupCosineSchedule:
    """Sets every parameter group's ``lr`` from :func:`warmup_cosine` before each optimiser step.

    Call :meth:`step` once per iteration, before ``optimizer.step()``; the state is the number of steps taken.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int,
        warmup_steps: int,
        base_lr: float,
        final_lr: float = 0.0,
    ) -> None:
        self.optimizer = optimizer
        self.total_steps, self.warmup_steps = int(total_steps), int(warmup_steps)
        self.base_lr, self.final_lr = float(base_lr), float(final_lr)
        self.steps_taken = 0
        warmup_cosine(0, self.total_steps, self.warmup_steps, self.base_lr, self.final_lr)  # validates

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.total_steps, self.warmup_steps, self.base_lr, self.final_lr)

    def step(self) -> float:
        """Set the rate of the next iteration and count it; returns that rate."""
        lr = self.lr_at(self.steps_taken)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.steps_taken += 1
        return lr

    def state_dict(self) -> dict[str, int | float]:
        return {
            "steps_taken": self.steps_taken,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "base_lr": self.base_lr,
            "final_lr": self.final_lr,
        }

    def load_state_dict(self, state: dict[str, int | float]) -> None:
        """Restore the step count; the shape of the schedule stays the one this object was built with."""
        self.steps_taken = int(state["steps_taken"])
