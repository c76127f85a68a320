"""Symmetry policies: parsing, presets, errors, augmentation, predicted views and chunk-shared sampling."""


import pytest
import torch

from photossl.config import build_config
from photossl.symmetry import (
    PREDICT_NAMES,
    TRANSFORM_NAMES,
    Flips,
    HalfTranslations,
    Rot4,
    SymmetryPolicy,
    parse_policy,
    policy_preset,
)


def test_essl_presets():
    blob = policy_preset("essl-blob")
    assert blob.invariant == ["flip", "rot4"] and blob.predict == "half_translate"
    assert isinstance(blob.predict_group, HalfTranslations)
    gpm = policy_preset("essl-gpm")
    assert gpm.invariant == ["translate", "flip"] and gpm.predict == "rot4"
    assert isinstance(gpm.predict_group, Rot4)
    assert policy_preset("none").invariant == [] and policy_preset("none").predict_group is None
    with pytest.raises(ValueError, match="allowed: none, essl-blob, essl-gpm"):
        policy_preset("simclr")


def test_parse_from_yaml_mapping_and_preset():
    assert parse_policy("invariant: [translate, flip]\npredict: rot4") == policy_preset("essl-gpm")
    assert parse_policy({"invariant": ["flip", "rot4"], "predict": "half_translate"}) == policy_preset("essl-blob")
    assert parse_policy("essl-gpm") == policy_preset("essl-gpm")
    assert parse_policy({"preset": "essl-gpm", "predict": "none"}).predict is None
    assert parse_policy("invariant: d4").invariant == ["d4"]
    scaled = parse_policy("invariant: [scale]\nscale_range: [0.8, 1.25]\neps_normalisation: [1, 19]")
    assert scaled.scale_range == (0.8, 1.25) and scaled.eps_normalisation == (1.0, 19.0)


def test_build_config_accepts_and_rejects_keys():
    policy = build_config(SymmetryPolicy, {"invariant": ["rot4"], "predict": "flip"})
    assert isinstance(policy.predict_group, Flips)
    with pytest.raises(ValueError, match="unknown config key 'predicts'"):
        build_config(SymmetryPolicy, {"predicts": "rot4"})


def test_unknown_names_list_the_allowed_ones():
    with pytest.raises(ValueError, match="'shear'.*allowed: " + ", ".join(TRANSFORM_NAMES)):
        SymmetryPolicy(invariant=["translate", "shear"])
    with pytest.raises(ValueError, match="'translate'.*allowed: " + ", ".join(PREDICT_NAMES)):
        SymmetryPolicy(predict="translate")  # N² classes are not a prediction task
    with pytest.raises(ValueError, match="'scale'"):
        parse_policy("predict: scale")
    with pytest.raises(ValueError, match="preset"):
        parse_policy("essl")
    with pytest.raises(ValueError, match="unknown symmetry preset"):
        parse_policy({"preset": "essl"})


def test_bad_ranges_are_rejected():
    with pytest.raises(ValueError, match="scale_range"):
        SymmetryPolicy(invariant=["scale"], scale_range=(2.0, 0.5))
    with pytest.raises(ValueError, match="scale_range"):
        SymmetryPolicy(scale_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="eps_normalisation"):
        SymmetryPolicy(eps_normalisation=(1.0, 0.0))


def test_predict_views_cover_the_group():
    x = torch.randn(6, 1, 16, 16)
    for preset, group in (("essl-gpm", Rot4()), ("essl-blob", HalfTranslations())):
        views, labels = policy_preset(preset).predict_views(x)
        assert views.shape == (24, 1, 16, 16) and labels.shape == (24,)
        for i in range(24):
            assert torch.equal(views[i], group.element(int(labels[i])).apply(x[i % 6]))
    with pytest.raises(ValueError, match="no 'predict' group"):
        policy_preset("none").predict_views(x)


def test_predict_views_keep_gradients():
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    views, _ = policy_preset("essl-gpm").predict_views(x)
    views.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 4.0))


def test_augment_is_a_per_sample_symmetry():
    policy = SymmetryPolicy(invariant=["d4", "translate"])
    x = torch.randn(1, 1, 12, 12).expand(64, 1, 12, 12)
    out = policy.augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # Every output is a permutation of the same pixels, and the samples were transformed differently.
    torch.testing.assert_close(out.flatten(1).sort(1).values, x.flatten(1).sort(1).values, rtol=0, atol=0)
    assert len({tuple(o.flatten().tolist()) for o in out}) > 32


def test_augment_equals_its_sampled_elements_and_is_reproducible():
    policy = policy_preset("essl-gpm")
    x = torch.randn(10, 2, 8, 8)
    out = policy.augment(x, torch.Generator().manual_seed(3))
    elements = policy.sample_invariant(10, 8, torch.Generator().manual_seed(3))
    assert torch.equal(out, elements.apply(x))
    for b in range(10):
        assert torch.equal(out[b], elements.element(b).apply(x[b]))
    assert torch.equal(out, policy.augment(x, torch.Generator().manual_seed(3)))


def test_invariant_sampling_covers_the_generated_group():
    # flip (the axis-mirror group) composed with rot4 is uniform over D4.
    elements = policy_preset("essl-blob").sample_invariant(8000, 32, torch.Generator().manual_seed(0))
    counts = torch.bincount(elements.point_labels(), minlength=8)
    assert counts.min() > 850 and counts.max() < 1150
    assert (elements.shift == 0).all()
    shifts = policy_preset("essl-gpm").sample_invariant(4000, 8, torch.Generator().manual_seed(1)).shift
    assert set(shifts[:, 0].tolist()) == set(range(8)) == set(shifts[:, 1].tolist())


def test_scale_augmentation_acts_on_raw_eps():
    policy = SymmetryPolicy(invariant=["scale"], scale_range=(0.5, 2.0), eps_normalisation=(1.0, 19.0))
    eps = 1 + 19 * torch.rand(200, 1, 8, 8, dtype=torch.float64)
    out = policy.augment((eps - 1) / 19, torch.Generator().manual_seed(0))
    ratio = (19 * out + 1) / eps
    per_sample = ratio.flatten(1)
    torch.testing.assert_close(per_sample, per_sample[:, :1].expand_as(per_sample))
    s = per_sample[:, 0]
    assert s.min() >= 0.5 and s.max() <= 2.0 and (s < 1).sum() > 60 and (s > 1).sum() > 60


def test_chunk_shared_augmentation_and_labels():
    policy = SymmetryPolicy(invariant=["d4", "translate", "scale"], predict="d4")
    x = torch.randn(1, 1, 8, 8).expand(64, 1, 8, 8)
    out = policy.augment(x, torch.Generator().manual_seed(0), chunk_size=16)
    chunks = out.split(16)
    for c in chunks:
        assert torch.equal(c, c[:1].expand_as(c))
    assert len({tuple(c[0].flatten().tolist()) for c in chunks}) > 1
    labels = policy.sample_predict(60, torch.Generator().manual_seed(1), chunk_size=16)
    assert labels.shape == (60,)
    for c in labels.split(16):
        assert (c == c[0]).all()


def test_empty_policy_leaves_the_batch_alone():
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(SymmetryPolicy().augment(x), x)
