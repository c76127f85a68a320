"""Relative E-SSL's set-valued cross-entropy against a loop reference and closed forms."""

import math

import pytest
import torch
import torch.nn.functional as F

from photossl.losses import CosetPredictionLoss, coset_prediction_loss


def _loop_reference(logits, correct):
    total = 0.0
    for row, ok in zip(logits.tolist(), correct.tolist()):
        norm = sum(math.exp(v) for v in row)
        total -= math.log(sum(math.exp(v) for v, k in zip(row, ok) if k) / norm)
    return total / len(logits)


def test_matches_loop_reference():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 8, generator=g, dtype=torch.float64)
    correct = torch.rand(6, 8, generator=g) < 0.3
    correct[:, 0] |= ~correct.any(dim=1)
    out = coset_prediction_loss(logits, correct)
    assert float(out.loss) == pytest.approx(_loop_reference(logits, correct), rel=1e-12)


def test_single_answer_is_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 4, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 3, 1, 2, 2])
    out = coset_prediction_loss(logits, F.one_hot(labels, 4).bool())
    assert torch.allclose(out.loss, F.cross_entropy(logits, labels))


def test_every_answer_right_costs_nothing_and_is_always_accurate():
    logits = torch.randn(3, 4, dtype=torch.float64)
    out = CosetPredictionLoss()(logits, torch.ones(3, 4, dtype=torch.bool))
    assert float(out.loss) == pytest.approx(0.0, abs=1e-12)
    assert float(out.accuracy) == 1.0


def test_uniform_logits_give_log_of_coset_fraction():
    correct = torch.tensor([[True, False, True, False, False, False, False, False]])
    out = coset_prediction_loss(torch.zeros(1, 8, dtype=torch.float64), correct)
    assert float(out.loss) == pytest.approx(math.log(4))


def test_gradcheck():
    logits = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    correct = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]).bool()
    assert torch.autograd.gradcheck(lambda t: coset_prediction_loss(t, correct).loss, (logits,))


def test_bad_shapes_and_empty_rows_are_refused():
    with pytest.raises(ValueError, match="correct"):
        coset_prediction_loss(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one"):
        coset_prediction_loss(torch.zeros(2, 3), torch.tensor([[True, False, False], [False] * 3]))
