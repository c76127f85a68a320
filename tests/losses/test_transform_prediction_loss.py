import math

import pytest
import torch

from photossl.losses import TransformPredictionLoss, transform_prediction_loss


def _reference(logits, labels):
    losses, correct = [], 0
    for row, label in zip(logits, labels):
        log_partition = math.log(sum(math.exp(v) for v in row))
        losses.append(log_partition - row[label])
        correct += int(max(range(len(row)), key=lambda k: row[k]) == label)
    return sum(losses) / len(losses), correct / len(labels)


@pytest.mark.parametrize("n, k", [(1, 2), (8, 4), (33, 7)])
def test_matches_loop_reference(n, k):
    g = torch.Generator().manual_seed(n * k)
    logits = 3 * torch.randn(n, k, generator=g, dtype=torch.float64)
    labels = torch.randint(0, k, (n,), generator=g)
    loss, accuracy = _reference(logits.tolist(), labels.tolist())
    out = transform_prediction_loss(logits, labels)
    assert out.loss.item() == pytest.approx(loss, rel=1e-12)
    assert out.accuracy.item() == pytest.approx(accuracy)


def test_closed_forms():
    # Uniform logits: loss log K; accuracy is that of argmax = 0.
    out = transform_prediction_loss(torch.zeros(4, 4), torch.tensor([0, 1, 2, 3]))
    assert out.loss.item() == pytest.approx(math.log(4))
    assert out.accuracy.item() == pytest.approx(0.25)
    # Confident and right: loss ~ 0, accuracy 1; confident and wrong: loss ~ margin, accuracy 0.
    logits = torch.tensor([[50.0, 0.0], [0.0, 50.0]])
    assert transform_prediction_loss(logits, torch.tensor([0, 1])).accuracy.item() == 1.0
    wrong = transform_prediction_loss(logits, torch.tensor([1, 0]))
    assert wrong.accuracy.item() == 0.0
    assert wrong.loss.item() == pytest.approx(50.0)


def test_accuracy_is_detached_and_loss_differentiable():
    logits = torch.randn(6, 4, requires_grad=True)
    out = transform_prediction_loss(logits, torch.randint(0, 4, (6,)))
    assert out.loss.requires_grad and not out.accuracy.requires_grad


def test_gradcheck():
    logits = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 3, 1, 1, 2])
    assert torch.autograd.gradcheck(lambda x: transform_prediction_loss(x, labels, 0.1).loss, (logits,))


def test_module_matches_function():
    logits, labels = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    for a, b in zip(TransformPredictionLoss(0.2)(logits, labels), transform_prediction_loss(logits, labels, 0.2)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("label_smoothing", [-0.1, 1.0, float("nan")])
def test_bad_label_smoothing_is_named(label_smoothing):
    with pytest.raises(ValueError, match="label_smoothing"):
        TransformPredictionLoss(label_smoothing)


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        transform_prediction_loss(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        transform_prediction_loss(torch.randn(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="logits"):
        transform_prediction_loss(torch.randn(4), torch.zeros(4, dtype=torch.long))
