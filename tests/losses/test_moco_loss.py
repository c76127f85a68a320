"""MoCo's InfoNCE against a loop of the paper's formula, and its exact relation to SimCLR's NT-Xent."""

import math

import pytest
import torch
import torch.nn.functional as F

from photossl.errors import PhotosslError
from photossl.losses import MoCoLoss, moco_loss, nt_xent_loss


def _reference(q, k, queue, temperature):
    """He et al. 2020, eq. 1, one query at a time: -log exp(q·k+/τ) / (exp(q·k+/τ) + Σ_j exp(q·n_j/τ))."""
    total = 0.0
    for b in range(q.shape[0]):
        qb, kb = q[b] / q[b].norm(), k[b] / k[b].norm()
        positive = math.exp(float(qb @ kb) / temperature)
        negatives = sum(math.exp(float(qb @ (n / n.norm())) / temperature) for n in queue)
        total += -math.log(positive / (positive + negatives))
    return total / q.shape[0]


@pytest.mark.parametrize("b, d, size, temperature", [(1, 2, 1, 0.2), (4, 3, 7, 0.07), (8, 16, 32, 0.5)])
def test_matches_the_loop_reference(b, d, size, temperature):
    g = torch.Generator().manual_seed(b + size)
    q, k = torch.randn(b, d, generator=g, dtype=torch.float64), torch.randn(b, d, generator=g, dtype=torch.float64)
    queue = torch.randn(size, d, generator=g, dtype=torch.float64)
    assert float(moco_loss(q, k, queue, temperature)) == pytest.approx(_reference(q, k, queue, temperature),
                                                                       rel=1e-10)


def test_nt_xent_is_moco_with_the_other_views_of_the_batch_as_the_queue():
    """NT-Xent (SimCLR) on (z1, z2) equals the mean over its 2B anchors of moco_loss with that anchor as the only
    query, the other view of its sample as the key and the queue holding exactly the 2B - 2 remaining views."""
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64)
    views = torch.cat([z1, z2])  # anchor a's positive is at (a + B) mod 2B
    n = views.shape[0]
    per_anchor = []
    for a in range(n):
        positive = (a + n // 2) % n
        others = [j for j in range(n) if j not in (a, positive)]
        per_anchor.append(moco_loss(views[a:a + 1], views[positive:positive + 1], views[others], 0.3))
    torch.testing.assert_close(torch.stack(per_anchor).mean(), nt_xent_loss(z1, z2, 0.3))


def test_in_batch_negatives_are_cross_entropy_over_the_key_similarities():
    """With one query at a time and the queue holding the batch's other keys, the mean is the cross-entropy of
    q̂ k̂ᵀ / τ with the diagonal as the classes (InfoNCE with in-batch negatives)."""
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    per_query = [moco_loss(q[i:i + 1], k[i:i + 1], torch.cat([k[:i], k[i + 1:]]), 0.2) for i in range(6)]
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.2
    torch.testing.assert_close(torch.stack(per_query).mean(), F.cross_entropy(logits, torch.arange(6)))


def test_closed_forms_and_gradients():
    q = torch.randn(3, 4, dtype=torch.float64)
    assert float(moco_loss(q, q, torch.empty(0, 4, dtype=torch.float64))) == pytest.approx(0.0, abs=1e-12)
    # K = 5 negatives each as similar to the query as its positive: log(1 + K)
    same = moco_loss(q[:1], 2.0 * q[:1], q[:1].repeat(5, 1), 0.2)
    assert float(same) == pytest.approx(math.log(6), rel=1e-12)
    q, k, queue = (torch.randn(4, 3, dtype=torch.float64, requires_grad=True) for _ in range(3))
    moco_loss(q, k, queue).backward()
    assert k.grad is None and queue.grad is None and q.grad is not None  # keys come from the momentum encoder
    k, queue = k.detach(), queue.detach()
    assert torch.autograd.gradcheck(lambda x: moco_loss(x, k, queue, 0.2), (q.detach().requires_grad_(True),))


def test_module_form_and_bad_arguments():
    q, k, queue = torch.randn(2, 3), torch.randn(2, 3), torch.randn(5, 3)
    torch.testing.assert_close(MoCoLoss(0.1)(q, k, queue), moco_loss(q, k, queue, 0.1))
    with pytest.raises(PhotosslError, match="temperature"):
        MoCoLoss(0.0)
    with pytest.raises(ValueError, match=r"queue must have shape \(K, 3\)"):
        moco_loss(q, k, torch.randn(5, 4))
    with pytest.raises(ValueError, match="same shape"):
        moco_loss(q, k[:1], queue)
