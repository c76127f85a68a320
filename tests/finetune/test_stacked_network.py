"""A stacked network computes each member's own network (outputs, gradients, batch-norm statistics), also for a
subset of its members; stacked Adam steps each member as its own ``torch.optim.Adam`` would, also when the
members go on from different step counts."""

import pytest
import torch

from photossl.finetune.network import Regressor, build_head
from photossl.finetune.stacked import StackedNetwork, can_stack
from photossl.finetune.stacked_adam import StackedAdam
from photossl.models import build_encoder


def _members(n, encoder="small", frozen=False, circular=True):
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        enc = build_encoder(encoder, in_channels=1, circular_padding=circular)
        models.append(Regressor(enc, build_head(enc.feature_dim, 7, "mlp", [12]), frozen=frozen))
    return models


@pytest.mark.parametrize("encoder, circular", [("small", True), ("small", False), ("essl", True)])
def test_outputs_gradients_and_statistics_are_the_members_own(encoder, circular):
    models = _members(3, encoder, circular=circular)
    net = StackedNetwork(models)
    x = torch.randn(3, 5, 1, 16, 16)
    out = net.forward(x, True)
    out.square().sum().backward()
    for m, model in enumerate(models):
        model.train()
        expected = model(x[m])
        expected.square().sum().backward()
        torch.testing.assert_close(out[m], expected, rtol=1e-4, atol=1e-5)
        state = net.member_state(m)
        for key, value in model.state_dict().items():  # running statistics moved as the member's own
            torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6, msg=key)
        for name, p in model.named_parameters():
            torch.testing.assert_close(net.params[name].grad[m], p.grad, rtol=1e-3, atol=1e-5, msg=name)
    with torch.inference_mode():
        evaluated = net.forward(x, False)
    for m, model in enumerate(models):
        model.eval()
        with torch.no_grad():
            torch.testing.assert_close(evaluated[m], model(x[m]), rtol=1e-4, atol=1e-5)


def test_a_subset_of_members_touches_only_their_rows():
    models = _members(3)
    net = StackedNetwork(models)
    before = {k: v.clone() for k, v in net.buffers.items()}
    x = torch.randn(2, 4, 1, 16, 16)
    out = net.forward(x, True, rows=[2, 0])
    out.sum().backward()
    for row, m in ((0, 2), (1, 0)):
        models[m].train()
        torch.testing.assert_close(out[row], models[m](x[row]), rtol=1e-4, atol=1e-5)
    for key, value in net.buffers.items():
        assert torch.equal(value[1], before[key][1])  # member 1 did not run
        assert not torch.equal(value[0], before[key][0]) and not torch.equal(value[2], before[key][2])
    assert all(float(p.grad[1].abs().max()) == 0 for p in net.params.values())
    net.keep([2, 0])
    assert net.size == 2 and torch.equal(net.member_state(0)["head.0.weight"], models[2].state_dict()["head.0.weight"])


def test_frozen_encoders_get_no_gradient_and_keep_their_statistics():
    models = _members(2, frozen=True)
    net = StackedNetwork(models)
    assert set(net.trainable()) == {k for k in net.params if k.startswith("head.")}
    before = {k: v.clone() for k, v in net.buffers.items()}
    net.forward(torch.randn(2, 4, 1, 16, 16), True).sum().backward()
    assert all(torch.equal(v, before[k]) for k, v in net.buffers.items())


def test_exactly_symmetric_encoders_are_not_stacked():
    torch.manual_seed(0)
    enc = build_encoder("small", in_channels=1, exact_symmetry=True)
    assert not can_stack(Regressor(enc, build_head(enc.feature_dim, 7, "mlp", [12])))
    assert can_stack(_members(1)[0])


RATES = [[1e-3, 1e-4], [5e-3, 5e-4], [2e-3, 2e-4]]  # per member: head group, encoder group


def _alone_adams(weights):
    alone = [(w.clone().requires_grad_(), w.clone().requires_grad_()) for w in weights]
    adams = [torch.optim.Adam([{"params": [h], "lr": r[0]}, {"params": [e], "lr": r[1]}], lr=r[0], weight_decay=1e-5)
             for (h, e), r in zip(alone, RATES)]
    return alone, adams


def _step_both_and_compare(optimizer, stacked, alone, adams, steps):
    """Step the stacked optimiser and each member's own Adam on the same gradients; the weights stay equal."""
    for step in range(steps):
        grads = torch.randn(len(alone), 5, 3)
        optimizer.zero_grad()
        stacked["head.w"].grad, stacked["encoder.w"].grad = grads.clone(), 2 * grads
        optimizer.step(RATES)
        for m, ((h, e), adam) in enumerate(zip(alone, adams)):
            adam.zero_grad()
            h.grad, e.grad = grads[m].clone(), 2 * grads[m]
            adam.step()
            assert torch.equal(stacked["head.w"][m], h) and torch.equal(stacked["encoder.w"][m], e), step


def test_stacked_adam_steps_each_member_as_torch_adam():
    torch.manual_seed(0)
    weights = [torch.randn(5, 3) for _ in range(3)]
    stacked = {"head.w": torch.stack(weights).requires_grad_(), "encoder.w": torch.stack(weights).requires_grad_()}
    optimizer = StackedAdam(stacked, {"head.w": 0, "encoder.w": 1}, weight_decay=1e-5)
    _step_both_and_compare(optimizer, stacked, *_alone_adams(weights), steps=4)


def test_stacked_adam_goes_on_from_members_at_different_steps_as_torch_adam():
    torch.manual_seed(0)
    alone, adams = _alone_adams([torch.randn(5, 3) for _ in range(3)])
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
    _step_both_and_compare(optimizer, stacked, alone, adams, steps=3)
    steps, exp_avg, _ = optimizer.member_state(1)
    assert steps == 7 and torch.equal(exp_avg["head.w"], adams[1].state[alone[1][0]]["exp_avg"])
    with pytest.raises(ValueError, match="not of these parameters"):
        optimizer.load_member(0, 1, {"other": torch.zeros(5, 3)}, {"other": torch.zeros(5, 3)})
