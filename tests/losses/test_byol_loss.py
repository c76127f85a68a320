"""BYOL's loss against a per-sample loop of the paper's formula, its closed forms, symmetry, stop-gradient and
gradients."""

import pytest
import torch

from photossl.losses import BYOLLoss, byol_loss


def _reference(p1, p2, z1, z2):
    """Grill et al. 2020, eq. 2 and the symmetrised L + L~: ||p/|p| - z/|z|||^2 per sample, mean per direction."""
    def direction(p, z):
        total = 0.0
        for b in range(p.shape[0]):
            diff = p[b] / p[b].norm() - z[b] / z[b].norm()
            total += float((diff * diff).sum())
        return total / p.shape[0]
    return direction(p1, z2) + direction(p2, z1)


def _tensors(b, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g, dtype=torch.float64) for _ in range(4)]


@pytest.mark.parametrize("b, d", [(1, 2), (5, 3), (16, 32)])
def test_matches_the_loop_reference(b, d):
    p1, p2, z1, z2 = _tensors(b, d)
    assert float(byol_loss(p1, p2, z1, z2)) == pytest.approx(_reference(p1, p2, z1, z2), rel=1e-12)


def test_closed_forms():
    z1, z2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    # predictions along the other view's targets (any positive scale): 0
    torch.testing.assert_close(byol_loss(3.0 * z2, 0.5 * z1, z1, z2), torch.tensor(0.0, dtype=torch.float64))
    # orthogonal: 2 per direction, 4 in all
    e = torch.eye(4, dtype=torch.float64)
    p1, p2 = e[[0, 1]], e[[1, 2]]
    t1, t2 = e[[3, 3]], e[[2, 0]]
    torch.testing.assert_close(byol_loss(p1, p2, t1, t2), torch.tensor(4.0, dtype=torch.float64))
    # opposite: 4 per direction, 8 in all (the maximum)
    torch.testing.assert_close(byol_loss(-z2, -z1, z1, z2), torch.tensor(8.0, dtype=torch.float64))


def test_symmetric_in_the_two_views_and_scale_invariant():
    p1, p2, z1, z2 = _tensors(7, 5)
    torch.testing.assert_close(byol_loss(p1, p2, z1, z2), byol_loss(p2, p1, z2, z1))
    torch.testing.assert_close(byol_loss(p1, p2, z1, z2), byol_loss(2 * p1, 7 * p2, 0.1 * z1, z2))


def test_targets_get_no_gradient_and_gradcheck_in_float64():
    p1, p2, z1, z2 = _tensors(4, 3)
    z1.requires_grad_(True)
    loss = byol_loss(p1.requires_grad_(True), p2, z1, z2)
    loss.backward()
    assert z1.grad is None and p1.grad is not None  # the stop-gradient
    z1, z2 = z1.detach(), z2.detach()
    p1, p2 = p1.detach().requires_grad_(True), p2.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: byol_loss(a, b, z1, z2), (p1, p2))


def test_module_form_and_bad_shapes():
    p1, p2, z1, z2 = _tensors(3, 4)
    torch.testing.assert_close(BYOLLoss()(p1, p2, z1, z2), byol_loss(p1, p2, z1, z2))
    with pytest.raises(ValueError, match="same shape"):
        byol_loss(p1, p2, z1[:, :3], z2[:, :3])
    with pytest.raises(ValueError, match=r"\(batch_size, dim\)"):
        byol_loss(p1[0], p2[0], z1[0], z2[0])
