"""Warm-up + cosine learning rate per iteration."""

import math

import pytest
import torch

from photossl.errors import PhotosslError
from photossl.training.schedule import WarmupCosineSchedule, warmup_cosine


def test_warmup_is_linear_and_reaches_the_base_rate():
    lrs = [warmup_cosine(s, 100, 10, 0.5) for s in range(10)]
    assert lrs == pytest.approx([0.05 * (s + 1) for s in range(10)])
    assert warmup_cosine(10, 100, 10, 0.5) == pytest.approx(0.5)  # cosine starts at the top


def test_cosine_closed_form_values():
    base, final, total, warm = 2.0, 0.2, 110, 10
    for step in (10, 35, 60, 85, 109):
        t = (step - warm) / (total - warm)
        expected = final + (base - final) * 0.5 * (1 + math.cos(math.pi * t))
        assert warmup_cosine(step, total, warm, base, final) == pytest.approx(expected)
    assert warmup_cosine(60, total, warm, base, final) == pytest.approx((base + final) / 2)  # half way
    assert warmup_cosine(total, total, warm, base, final) == final
    assert warmup_cosine(total + 5, total, warm, base, final) == final


def test_no_warmup_starts_at_base_and_decreases_monotonically():
    lrs = [warmup_cosine(s, 50, 0, 1.0) for s in range(50)]
    assert lrs[0] == 1.0
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] > 0


def test_schedule_sets_optimizer_rate_and_restores_its_step():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=123.0)
    schedule = WarmupCosineSchedule(optimizer, total_steps=20, warmup_steps=4, base_lr=1.0)
    seen = [schedule.step() for _ in range(7)]
    assert optimizer.param_groups[0]["lr"] == seen[-1] == warmup_cosine(6, 20, 4, 1.0)
    other = WarmupCosineSchedule(torch.optim.SGD([param], lr=0.0), 20, 4, 1.0)
    other.load_state_dict(schedule.state_dict())
    assert other.step() == schedule.step()


def test_bad_schedule_arguments_are_rejected():
    with pytest.raises(PhotosslError, match="total_steps"):
        warmup_cosine(0, 0, 0, 1.0)
