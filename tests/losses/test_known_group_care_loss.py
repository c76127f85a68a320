"""Known-group CARE: zero exactly for maps equivariant with the prescribed ρ, positive otherwise."""

import pytest
import torch
import torch.nn.functional as F

from photossl.losses import KnownGroupCARELoss, known_group_care_loss
from photossl.symmetry import D4
from photossl.symmetry.representations import block_representation


def _equivariant_embedding(x, rho, weights):
    """f(x) = Σ_h ρ(h)ᵀ W vec(h·x): exactly ρ-equivariant, f(g·x) = ρ(g) f(x)."""
    group = D4()
    out = 0
    for h in range(group.order):
        out = out + (group.apply(x, h).flatten(1) @ weights.T) @ rho[h]  # row form of ρ(h)ᵀ W v
    return out


def test_zero_for_an_exactly_equivariant_map_and_positive_otherwise():
    group = D4()
    rho = block_representation(group, 16).matrices
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64)
    weights = torch.randn(16, 64, generator=g, dtype=torch.float64)
    labels = torch.randint(group.order, (6,), generator=g)
    z = _equivariant_embedding(x, rho, weights)
    z_g = _equivariant_embedding(group.apply_labels(x, labels), rho, weights)
    assert float(known_group_care_loss(z_g, z, rho[labels])) == pytest.approx(0.0, abs=1e-20)
    # A plain linear map is not equivariant; nor is the right map with the wrong representation.
    plain = x.flatten(1) @ weights.T
    plain_g = group.apply_labels(x, labels).flatten(1) @ weights.T
    assert float(known_group_care_loss(plain_g, plain, rho[labels])) > 1e-2
    wrong = rho[(labels + 1) % group.order]
    assert float(KnownGroupCARELoss()(z_g, z, wrong)) > 1e-2


def test_closed_forms_on_the_sphere():
    z = F.normalize(torch.randn(4, 8, dtype=torch.float64), dim=1)
    eye = torch.eye(8, dtype=torch.float64).expand(4, 8, 8)
    assert float(known_group_care_loss(-z, z, eye)) == pytest.approx(4.0)  # antipodes
    assert float(known_group_care_loss(3 * z, z, eye)) == pytest.approx(0.0, abs=1e-24)  # scale-free


def test_gradcheck():
    rho = block_representation(D4(), 8).matrices[torch.tensor([1, 5, 6])]
    z = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    z_g = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: known_group_care_loss(a, b, rho), (z_g, z))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="rho"):
        known_group_care_loss(torch.zeros(2, 8), torch.zeros(2, 8), torch.zeros(2, 4, 4))
