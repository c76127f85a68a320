import math

import pytest
import torch
import torch.nn.functional as F

from photossl.losses import NTXentLoss, nt_xent_loss


def _reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """SimCLR Algorithm 1, written with loops: views 2k and 2k+1 are the two views of sample k."""
    views = []
    for a, b in zip(z1.tolist(), z2.tolist()):
        views += [a, b]

    def sim(u, v):
        dot = sum(x * y for x, y in zip(u, v))
        return dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))

    def ell(i, j):
        denominator = sum(math.exp(sim(views[i], views[k]) / temperature) for k in range(len(views)) if k != i)
        return -math.log(math.exp(sim(views[i], views[j]) / temperature) / denominator)

    n = z1.shape[0]
    return sum(ell(2 * k, 2 * k + 1) + ell(2 * k + 1, 2 * k) for k in range(n)) / (2 * n)


def _care_reference_info_nce(out_1: torch.Tensor, out_2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The authors' InfoNCE from Sharut/CARE (utils.infoNCE), transcribed; expects L2-normalised rows."""
    bs = out_1.shape[0]
    out = torch.cat([out_1, out_2], dim=0)
    neg = torch.exp(torch.mm(out, out.t()) / temperature)
    mask = torch.ones((bs, 2 * bs), dtype=torch.bool)
    for i in range(bs):
        mask[i, i] = False
        mask[i, i + bs] = False
    mask = torch.cat((mask, mask), 0)
    neg = neg.masked_select(mask).view(2 * bs, -1)
    pos = torch.exp(torch.sum(out_1 * out_2, dim=-1) / temperature)
    pos = torch.cat([pos, pos], dim=0)
    return (-torch.log(pos / (pos + neg.sum(dim=-1)))).mean()


@pytest.mark.parametrize("batch_size", [1, 2, 5, 16])
@pytest.mark.parametrize("dim", [2, 8, 32])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
def test_matches_loop_reference(batch_size, dim, temperature):
    g = torch.Generator().manual_seed(batch_size * 1000 + dim)
    z1 = torch.randn(batch_size, dim, generator=g, dtype=torch.float64)
    z2 = torch.randn(batch_size, dim, generator=g, dtype=torch.float64)
    expected = _reference_nt_xent(z1, z2, temperature)
    assert nt_xent_loss(z1, z2, temperature).item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("batch_size", [2, 7, 32])
def test_matches_care_authors_info_nce(batch_size):
    g = torch.Generator().manual_seed(batch_size)
    z1 = F.normalize(torch.randn(batch_size, 16, generator=g, dtype=torch.float64), dim=1)
    z2 = F.normalize(torch.randn(batch_size, 16, generator=g, dtype=torch.float64), dim=1)
    expected = _care_reference_info_nce(z1, z2, 0.5)
    torch.testing.assert_close(nt_xent_loss(z1, z2, 0.5), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_identical_orthonormal_views_closed_form(batch_size, temperature):
    # Positive similarity 1, all 2B - 2 negatives have similarity 0:
    # loss = -log(e^{1/t} / (e^{1/t} + 2B - 2)) = log(1 + (2B - 2) e^{-1/t}).
    z = torch.eye(8, dtype=torch.float64)[:batch_size] * 3.0
    expected = math.log(1 + (2 * batch_size - 2) * math.exp(-1 / temperature))
    assert nt_xent_loss(z, z.clone(), temperature).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("batch_size", [1, 4, 9])
def test_all_collinear_closed_form(batch_size):
    # Every similarity is 1, so each anchor picks its positive among 2B - 1 equal logits.
    direction = torch.randn(1, 5, dtype=torch.float64)
    scales = torch.rand(batch_size, 1, dtype=torch.float64) + 0.5
    expected = math.log(2 * batch_size - 1)
    assert nt_xent_loss(direction * scales, direction * scales.flip(0), 0.3).item() == pytest.approx(expected)


def test_symmetric_and_scale_invariant():
    z1, z2 = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    value = nt_xent_loss(z1, z2, 0.2)
    torch.testing.assert_close(nt_xent_loss(z2, z1, 0.2), value)
    scales = torch.rand(6, 1, dtype=torch.float64) + 0.1
    torch.testing.assert_close(nt_xent_loss(z1 * scales, z2, 0.2), value)


def test_gather_without_process_group_is_local():
    z1, z2 = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(nt_xent_loss(z1, z2, gather_distributed=True), nt_xent_loss(z1, z2))


def test_gradcheck():
    z1 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent_loss(a, b, 0.3), (z1, z2))


def test_module_matches_function():
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    torch.testing.assert_close(NTXentLoss(temperature=0.1)(z1, z2), nt_xent_loss(z1, z2, 0.1))


@pytest.mark.parametrize("temperature", [0.0, -0.5, float("nan"), float("inf"), "0.5"])
def test_bad_temperature_is_named(temperature):
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(torch.randn(2, 3), torch.randn(2, 3), temperature)


def test_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(torch.randn(2, 3), torch.randn(3, 3))
    with pytest.raises(ValueError, match="batch_size, dim"):
        nt_xent_loss(torch.randn(2, 3, 1), torch.randn(2, 3, 1))
