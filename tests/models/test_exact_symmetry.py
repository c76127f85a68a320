"""Exact D4 × integer-roll symmetry by architecture: adaptive polyphase sampling, orbit averaging, the wrapper."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from photossl.errors import PhotosslError
from photossl.models import (
    ESSLEncoder,
    ExactSymmetryEncoder,
    PolyphaseMaxPool2d,
    SmallEncoder,
    aps_downsample,
    aps_phase,
    build_encoder,
    make_shift_invariant,
    orbit_average,
)
from photossl.symmetry import D4, kpoint_permutation_table, vectorised_roll

TOL = 1e-5
ROLLS = [(0, 0), (1, 0), (0, 1), (3, 5), (7, 2), (8, 8), (13, 31)]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks: one torch thread."""


def small(seed=0):
    torch.manual_seed(seed)
    return SmallEncoder(channels=(8, 16, 16, 16), feature_dim=12)


def essl(seed=0):
    torch.manual_seed(seed)
    return ESSLEncoder(channels=(8, 16, 16), hidden_dim=32, feature_dim=12)


def symmetric_cells(n=32):
    """Cells with symmetries of their own: p4m level sets (about pixel 0 and moved off it), stripes (invariant to
    every roll along one axis), a checkerboard (to the diagonal roll by one pixel), a 4-pixel tile, a constant."""
    from photossl.physics import fourier_level_set_cell

    p4m = torch.stack([torch.as_tensor(fourier_level_set_cell(seed=s, n=n, group="p4m").eps, dtype=torch.float32)
                       for s in range(3)])
    p4m = (p4m - 1) / 19
    i = torch.arange(n)
    stripes = (i[:, None] % 6 < 3).float().expand(n, n)
    checker = ((i[:, None] + i[None, :]) % 2).float()
    tile = torch.Generator().manual_seed(1)
    tile = torch.rand(4, 4, generator=tile).repeat(n // 4, n // 4)
    cells = torch.cat([p4m, torch.roll(p4m[:1], (3, 10), (1, 2)), stripes[None], checker[None], tile[None],
                       torch.full((1, n, n), 0.3)])
    return cells[:, None]


def random_cells(n=32, batch=4, seed=0):
    return torch.randn(batch, 1, n, n, generator=torch.Generator().manual_seed(seed))


def relative_error(a, b):
    return float(((a - b).norm(dim=1) / b.norm(dim=1).clamp_min(1e-30)).max())


def max_symmetry_error(model, x, rolls=ROLLS):
    """Largest relative change of model(x) over the 8 D4 elements composed with rolls (the same for the batch)."""
    group, reference, worst = D4(), model(x), 0.0
    for label in range(8):
        for roll in rolls:
            worst = max(worst, relative_error(model(torch.roll(group.apply(x, label), roll, (2, 3))), reference))
    return worst


# ------------------------------------------------------------------------------------ adaptive polyphase sampling
def test_aps_keeps_the_component_of_largest_norm():
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    out = aps_downsample(x, 2)
    assert out.shape == (3, 2, 4, 4)
    for b in range(3):
        components = [x[b, :, i::2, j::2] for i in range(2) for j in range(2)]
        best = max(components, key=lambda c: float(c.double().square().sum()))
        assert torch.equal(out[b], best)
    assert aps_downsample(x, 1) is x


@pytest.mark.parametrize("stride", [2, 4])
def test_aps_turns_every_roll_into_a_roll(stride):
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(stride))
    out = aps_downsample(x, stride)
    m = 16 // stride
    for roll in [(1, 0), (0, 3), (5, 7), (stride, 1)]:
        rolled = aps_downsample(torch.roll(x, roll, (2, 3)), stride)
        for b in range(4):
            assert any(torch.equal(rolled[b], torch.roll(out[b], (i, j), (1, 2))) for i in range(m) for j in range(m))


def test_adaptive_strided_convolution_keeps_the_best_phase_of_the_stride_one_map():
    conv = make_shift_invariant(nn.Sequential(small().body[0])).eval()[0]
    x = random_cells(16)
    with torch.no_grad():
        full = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), conv.weight)
        torch.testing.assert_close(conv(x), aps_downsample(full, 2), rtol=1e-6, atol=1e-6)
        phase = aps_phase(full, 2)
        assert phase.shape == (x.shape[0], 2) and bool((phase.sum(0) > 0).any())  # not always phase (0, 0)


def test_aps_rejects_sizes_that_are_not_multiples_of_the_stride():
    with pytest.raises(PhotosslError, match="multiple"):
        aps_downsample(torch.randn(1, 1, 6, 6), 4)


def test_polyphase_max_pool_is_a_max_pool_at_the_best_phase():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = PolyphaseMaxPool2d(2)(x)
    candidates = [F.max_pool2d(torch.roll(x, (-i, -j), (2, 3)), 2) for i in range(2) for j in range(2)]
    for b in range(2):
        best = max((c[b] for c in candidates), key=lambda c: float(c.double().square().sum()))
        assert torch.equal(out[b], best)


# ------------------------------------------------------------------------------------------------- conversion
def test_conversion_keeps_parameters_and_state_dict_keys():
    plain = small()
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    converted = make_shift_invariant(small())
    assert list(converted.state_dict()) == list(state)
    assert all(torch.equal(converted.state_dict()[k], v) for k, v in state.items())
    assert not any(isinstance(m, nn.MaxPool2d) for m in converted.modules())
    assert sum(isinstance(m, PolyphaseMaxPool2d) for m in converted.modules()) == 2
    assert make_shift_invariant(converted) is converted  # idempotent


def test_the_conversion_changes_only_where_the_encoder_subsampled():
    """Same weights, so on inputs whose best phase is (0, 0) everywhere the converted encoder matches the original:
    check it through the stride-1 maps it computes (phase (0, 0) of them is the original's map)."""
    plain, converted = small().eval(), make_shift_invariant(small()).eval()
    x = random_cells(16)
    with torch.no_grad():
        stem = converted.body[0]
        full = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), stem.weight)
        torch.testing.assert_close(full[:, :, ::2, ::2], plain.body[0](x))


@pytest.mark.parametrize("make", [
    lambda: SmallEncoder(circular_padding=False),
    lambda: ESSLEncoder(circular_padding=False),
    lambda: build_encoder("resnet18", in_channels=1),
    lambda: build_encoder("digits"),
])
def test_non_periodic_encoders_are_refused_unchanged(make):
    encoder = make()
    layers = [type(m) for m in encoder.modules()]
    with pytest.raises(PhotosslError, match="periodic|commute"):
        ExactSymmetryEncoder(encoder)
    assert [type(m) for m in encoder.modules()] == layers


def test_build_encoder_option():
    model = build_encoder("small", exact_symmetry=True)
    assert isinstance(model, ExactSymmetryEncoder) and model.feature_dim == 256 and model.in_channels == 1
    assert isinstance(build_encoder("essl", exact_symmetry=True, feature_dim=64).encoder, ESSLEncoder)
    for name, kwargs in [("resnet18", {}), ("digits", {}), ("small", {"circular_padding": False})]:
        with pytest.raises(PhotosslError, match="exact_symmetry needs a periodic encoder"):
            build_encoder(name, exact_symmetry=True, **kwargs)
    with pytest.raises(PhotosslError, match="already"):
        ExactSymmetryEncoder(model)


# ----------------------------------------------------------------------------------------------- invariance
@pytest.mark.parametrize("make", [small, essl], ids=["small", "essl"])
@pytest.mark.parametrize("cells", ["random", "symmetric"])
def test_exact_invariance_eval_mode(make, cells):
    model = ExactSymmetryEncoder(make()).eval()
    x = random_cells() if cells == "random" else symmetric_cells()
    with torch.no_grad():
        error = max_symmetry_error(model, x)
    assert error <= TOL, error


@pytest.mark.parametrize("make", [small, essl], ids=["small", "essl"])
def test_exact_invariance_train_mode_with_a_different_element_per_cell(make):
    """Batch norm in train mode normalises with batch statistics; the batch holds each cell's whole D4 orbit and
    the statistics ignore where a value sits, so a different rotation and roll per cell changes nothing."""
    model = ExactSymmetryEncoder(make()).train()
    x = torch.cat([random_cells(batch=3), symmetric_cells()])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        reference = model(x)
        for _ in range(3):
            labels = torch.randint(8, (x.shape[0],), generator=generator)
            shifts = torch.randint(32, (x.shape[0], 2), generator=generator)
            moved = vectorised_roll(D4().apply_labels(x, labels), shifts)
            assert relative_error(model(moved), reference) <= TOL


def test_16_pixel_cells_and_the_default_encoders():
    for name in ("small", "essl"):
        torch.manual_seed(0)
        model = build_encoder(name, exact_symmetry=True).eval()
        with torch.no_grad():
            assert max_symmetry_error(model, random_cells(16, batch=2), rolls=[(0, 0), (3, 1)]) <= TOL


def test_the_plain_encoder_is_not_invariant_to_odd_rolls():
    """What the wrapper fixes: with stride 8 the plain encoder only ignores rolls by multiples of 8."""
    model = small().eval()
    x = random_cells()
    with torch.no_grad():
        assert relative_error(model(torch.roll(x, (1, 0), (2, 3))), model(x)) > 1e-3
        assert relative_error(model(torch.roll(x, (8, 16), (2, 3))), model(x)) <= TOL


# ---------------------------------------------------------------------------------------------- training, state
def test_a_gradient_step_trains_and_keeps_the_invariance():
    model = ExactSymmetryEncoder(small()).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = random_cells()
    before = model.eval()(x).detach()
    model.train()
    loss = model(x).square().mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert any(float(p.grad.abs().max()) > 0 for p in model.parameters())
    optimizer.step()
    model.eval()
    with torch.no_grad():
        assert not torch.allclose(model(x), before)
        assert max_symmetry_error(model, x) <= TOL


def test_state_dicts_load_both_ways():
    wrapped = ExactSymmetryEncoder(small(seed=1))
    assert list(wrapped.state_dict()) == ["encoder." + k for k in small().state_dict()]
    plain = small(seed=2)
    other = ExactSymmetryEncoder(small(seed=3))
    other.load_state_dict(plain.state_dict())  # a plain encoder's weights, into the wrapper
    assert all(torch.equal(a, b) for a, b in zip(other.encoder.state_dict().values(), plain.state_dict().values()))
    other.load_state_dict(wrapped.state_dict())  # and the wrapper's own keys
    fresh = small(seed=4)
    fresh.load_state_dict(wrapped.encoder.state_dict())  # the base, back into a plain encoder
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), wrapped.encoder.state_dict().values()))
    holder = nn.ModuleDict({"encoder": ExactSymmetryEncoder(small())})  # nested: keys of a plain model, with prefix
    holder.load_state_dict({"encoder." + k: v for k, v in plain.state_dict().items()})
    assert torch.equal(holder["encoder"].encoder.fc.weight, plain.fc.weight)


# -------------------------------------------------------------------------------------------- equivariant outputs
def test_orbit_average_of_a_permuted_output_is_exactly_equivariant():
    """Bands on a k-grid: a head on the per-element features, mapped back by the k-point permutation and averaged,
    gives y(g·x) = P_g y(x) with (P_g y)[i] = y[perm_g[i]]."""
    from photossl.physics import sibcl_grid

    table = kpoint_permutation_table(sibcl_grid(5))  # (8, 25)
    n_bands = 3
    permutation = (table[:, :, None] * n_bands + torch.arange(n_bands)).reshape(8, -1)
    encoder = ExactSymmetryEncoder(small()).eval()
    torch.manual_seed(1)
    head = nn.Linear(encoder.feature_dim, 25 * n_bands)

    def bands(x):
        features = encoder.orbit_features(x)
        return orbit_average(head(features), permutation)

    x = torch.cat([random_cells(batch=2), symmetric_cells()[:2]])
    group = D4()
    with torch.no_grad():
        y = bands(x)
        assert relative_error(encoder(x), encoder.orbit_features(x).mean(0)) == 0
        for label in range(8):
            expected = y[:, permutation[label]]
            for roll in [(0, 0), (1, 2), (5, 0)]:
                got = bands(torch.roll(group.apply(x, label), roll, (2, 3)))
                assert relative_error(got, expected) <= TOL
        # Without the permutation the average is invariant, which is wrong for bands off the symmetric points.
        plain = orbit_average(head(encoder.orbit_features(x)))
        rotated = orbit_average(head(encoder.orbit_features(group.apply(x, 1))))
        assert relative_error(rotated, plain) <= TOL and relative_error(y[:, permutation[1]], y) > 1e-3


def test_orbit_average_checks_shapes():
    with pytest.raises(PhotosslError, match="8 rows"):
        orbit_average(torch.zeros(4, 2, 3))
    with pytest.raises(PhotosslError, match="permutation must have shape"):
        orbit_average(torch.zeros(8, 2, 3), torch.zeros(8, 4, dtype=torch.long))


def test_aps_breaks_exact_ties_between_different_components_the_same_way_at_every_roll():
    """Two components of equal norm but different content (as two-valued cells can give): the choice must follow
    the content, not the (a, c) order, or a roll would change it."""
    a = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # norm² 2, neighbours along an axis
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # norm² 2, neighbours along a diagonal
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0::2, 0::2] = b  # first in (a, c) order
    x[0, 0, 1::2, 1::2] = a
    for roll in [(0, 0), (1, 0), (0, 1), (1, 1), (3, 2)]:
        chosen = aps_downsample(torch.roll(x, roll, (-2, -1)), 2)[0, 0]
        assert any(torch.equal(chosen, torch.roll(a, shift, (0, 1))) for shift in [(0, 0), (1, 0), (0, 1), (1, 1)])
