"""Known-group diagnostics: zero prescribed error for a ρ-equivariant embedding, and the per-block split."""

import pytest
import torch

from photossl.evaluation.diagnostics import symmetry_diagnostics
from photossl.evaluation.known_group import known_group_diagnostics
from photossl.symmetry import D4, Rot4
from photossl.symmetry.representations import block_representation


def _equivariant(rho, weights, group):
    def embed(x):
        return sum((group.apply(x, h).flatten(1).double() @ weights.T) @ rho[h] for h in range(group.order))
    return embed


def test_prescribed_error_vanishes_for_a_rho_equivariant_embedding():
    group = D4()
    rep = block_representation(group, 16)
    weights = torch.randn(16, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = known_group_diagnostics(_equivariant(rep.matrices, weights, group), x, group, rep)
    assert set(out["blocks"]) == {"overall", "A1", "A2", "B1", "B2", "E"}
    for name, block in out["blocks"].items():
        assert block["prescribed_error"] < 1e-10, name
        assert block["wahba_error"] < 1e-8 and block["composition_error"] < 1e-6, name
    # Another orthogonal action on the E block (ρ conjugated by a swap of two E copies' order is still ρ; a mirror
    # of the A2 block is not): the Wahba error stays 0 while the prescribed error does not.
    twisted = rep.matrices.clone()
    a2 = [b for b in rep.blocks if b.irrep == "A2"][0].start
    twisted[:, a2, a2] = torch.tensor([float(group.element(g).point[0][0] ** 2 - group.element(g).point[0][1] ** 2)
                                       for g in range(group.order)])  # B1's character in A2's place
    out = known_group_diagnostics(_equivariant(twisted, weights, group), x, group, rep)
    assert out["blocks"]["A2"]["prescribed_error"] > 0.1
    assert out["blocks"]["A2"]["wahba_error"] < 1e-8


def test_relative_prediction_accuracy_uses_the_pair():
    group = Rot4()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    encoder = torch.nn.Flatten()

    def oracle(pair):  # finds which rotation takes the first half to the second
        a, b = pair.chunk(2, dim=1)
        a = a.reshape(-1, 1, 8, 8)
        b = b.reshape(-1, 1, 8, 8)
        scores = [-(group.apply(a, k) - b).flatten(1).abs().sum(1) for k in range(4)]
        return torch.stack(scores, dim=1)

    result = symmetry_diagnostics(encoder, x, ["rot4"], prediction_head=oracle, prediction_group="rot4",
                                  relative_prediction=True)
    assert result["prediction"]["accuracy"] == pytest.approx(1.0)
