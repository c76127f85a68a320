"""Relative E-SSL and known-group CARE views and models: right answers on symmetric cells, heads on pairs."""

import numpy as np
import pytest
import torch

from photossl.errors import PhotosslError
from photossl.physics.cells import fourier_level_set_cell, rods_cell
from photossl.symmetry import parse_policy
from photossl.training.config import MethodSpec, make_config, parse_method, resolve_defaults
from photossl.training.methods import build_model
from photossl.training.views import PhotonicsViews


@pytest.mark.parametrize("name, spec", [
    ("essl-rel", MethodSpec(predict=True, relative=True)),
    ("rel-essl-care", MethodSpec(predict=True, care=True, relative=True)),
    ("gcare", MethodSpec(known_group=True)),
    ("essl-gcare-vicreg", MethodSpec("vicreg", predict=True, known_group=True)),
])
def test_method_names_round_trip(name, spec):
    assert parse_method(name) == spec
    assert parse_method(spec.name) == spec


@pytest.mark.parametrize("name, message", [("rel", "use it with essl"), ("care-gcare", "not both")])
def test_contradictory_methods_are_one_line_errors(name, message):
    with pytest.raises(PhotosslError, match=message):
        parse_method(name)


def _cells():
    p1 = [fourier_level_set_cell(seed, group="p1").eps for seed in range(3)]
    eps = np.stack([rods_cell(), *p1]).astype(np.float32)
    return torch.as_tensor((eps - 1) / 19)[:, None]


@pytest.mark.parametrize("predict_views", ["all", "one"])
def test_relative_views_score_symmetric_cells_up_to_their_stabiliser(predict_views):
    policy = parse_policy("equivariant-d4")
    views = PhotonicsViews(policy, parse_method("essl-rel"), predict_views=predict_views)
    x = _cells()
    out = views(x, torch.Generator().manual_seed(0))
    b, groups = x.shape[0], 8 if predict_views == "all" else 1
    correct = out.predict_correct.reshape(groups, b, 8)
    assert out.relative_anchor == ("first_block" if predict_views == "all" else "view1")
    assert correct[:, 0].all()  # the rods have every point symmetry: any answer is right
    labels = out.predict_labels.reshape(groups, b)
    for cell in range(1, b):  # p1 cells: exactly one right answer, the applied element
        assert torch.equal(correct[:, cell].sum(dim=1), torch.ones(groups, dtype=torch.long))
        assert torch.equal(correct[:, cell].float().argmax(dim=1), labels[:, cell])
    # The pair really is related by the label: g·anchor == predicted view.
    anchor = x if predict_views == "all" else out.view1
    group = policy.predict_group
    expected = group.apply_labels(anchor.repeat(groups, 1, 1, 1), out.predict_labels)
    assert torch.equal(expected, out.predict_views)


def test_known_group_views_are_the_first_view_transformed():
    policy = parse_policy("equivariant-d4")
    out = PhotonicsViews(policy, parse_method("gcare"))(_cells(), torch.Generator().manual_seed(1))
    assert out.predict_views is None
    assert torch.equal(policy.predict_group.apply_labels(out.view1, out.equivariant_labels), out.equivariant_views)


def test_relative_head_reads_a_pair_and_known_group_model_holds_rho():
    config = resolve_defaults(make_config({"method": "essl-rel-gcare", "policy": "equivariant-d4"}))
    model = build_model(config, 1)
    assert model.predictor.in_dim == 2 * model.encoder.feature_dim
    assert model.representation.shape == (8, 128, 128)
    assert "representation" not in model.state_dict()
    views = PhotonicsViews(config.symmetry_policy(), config.spec, predict_views="one")(_cells())
    terms = model(views)
    terms["loss"].backward()
    assert {"predict_ce", "predict_acc", "gcare"} <= set(terms)
    assert all(p.grad is not None for p in model.predictor.parameters())


def test_known_group_method_needs_a_group():
    with pytest.raises(PhotosslError, match="needs a group"):
        make_config({"method": "gcare", "policy": "none"})
