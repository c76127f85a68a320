"""The p4m group-convolution encoder: equivariant layers, exact D4 × roll invariance, permuted orbit features."""

import pytest
import torch
import torch.nn.functional as F

from photossl.errors import PhotosslError
from photossl.models import (
    ExactSymmetryEncoder,
    GroupConv2d,
    LiftingConv2d,
    P4MEncoder,
    build_encoder,
    is_exactly_symmetric,
)
from photossl.models.p4m_encoder import d4_inverse_products, d4_inverses
from photossl.symmetry import D4, vectorised_roll

TOL = 1e-5
GROUP = D4()


def d4_kernel_index(kernel_size: int) -> torch.Tensor:
    """Where each D4 element takes a k×k kernel's pixels, about its centre: (g·K).flatten()[i] = K.flatten()[idx[g, i]].

    Shape: ``(8, k²)`` long, rows in D4 label order.
    """
    half = kernel_size // 2
    positions = torch.arange(kernel_size * kernel_size, dtype=torch.float64).reshape(1, kernel_size, kernel_size)
    centred = torch.roll(positions, (-half, -half), (-2, -1))  # the centre at pixel 0, where D4 acts
    group = GROUP
    rows = [torch.roll(group.apply(centred, g), (half, half), (-2, -1)).flatten() for g in range(8)]
    return torch.stack(rows).long()


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks: one torch thread."""


def act(features, label):
    """The regular representation on group feature maps: (h·f)[g] = h·f[h⁻¹g], f of shape (B, C, 8, N, N)."""
    moved = features[:, :, d4_inverse_products()[label]]
    return GROUP.apply(moved.flatten(1, 2), label).unflatten(1, moved.shape[1:3])


def cells(batch=3, n=32, seed=0):
    return torch.randn(batch, 1, n, n, generator=torch.Generator().manual_seed(seed))


def symmetric_cells(n=32):
    """Cells with symmetries of their own, where polyphase norms and group channels tie: p4m level sets, a
    checkerboard (invariant to the diagonal roll by one pixel), a constant."""
    from photossl.physics import fourier_level_set_cell

    p4m = torch.stack([torch.as_tensor(fourier_level_set_cell(seed=s, n=n, group="p4m").eps, dtype=torch.float32)
                       for s in range(2)])
    i = torch.arange(n)
    checker = ((i[:, None] + i[None, :]) % 2).float()
    return torch.cat([(p4m - 1) / 19, checker[None], torch.full((1, n, n), 0.3)])[:, None]


def relative(a, b):
    return float(((a - b).norm(dim=-1) / b.norm(dim=-1)).max().detach())


def test_kernel_index_is_d4_about_the_kernel_centre():
    index = d4_kernel_index(3)
    assert index.shape == (8, 9)
    assert torch.equal(index[0], torch.arange(9))
    kernel = torch.arange(9.0).reshape(3, 3)
    quarter = kernel.flatten()[index[1]].reshape(3, 3)
    assert quarter[1, 1] == 4  # the centre stays
    assert torch.equal(quarter, GROUP.apply(torch.roll(kernel, (-1, -1), (0, 1))[None], 1)[0].roll((1, 1), (0, 1)))
    for g in range(8):  # each row a permutation, and applying g then g⁻¹ gives the kernel back
        assert torch.equal(index[g].sort().values, torch.arange(9))
        assert torch.equal(kernel.flatten()[index[g]][index[int(d4_inverses()[g])]], kernel.flatten())


def test_group_tables():
    table = d4_inverse_products()
    assert torch.equal(table.diagonal(), torch.zeros(8, dtype=torch.long))  # g⁻¹g = e
    for row in table:
        assert torch.equal(row.sort().values, torch.arange(8))
    inverses = d4_inverses()
    assert torch.equal(table[torch.arange(8), 0], inverses)
    assert torch.equal(inverses[inverses], torch.arange(8))


def test_lifting_convolution_is_the_plain_convolution_with_each_transformed_kernel():
    torch.manual_seed(0)
    lift = LiftingConv2d(2, 3, 3)
    x = cells(2).repeat(1, 2, 1, 1)
    out = lift(x)
    assert out.shape == (2, 3, 8, 32, 32)
    for g in range(8):
        kernel = lift.weight.flatten(-2)[..., d4_kernel_index(3)[g]].reshape(lift.weight.shape)
        expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), kernel)
        assert torch.allclose(out[:, :, g], expected, atol=1e-6)


@pytest.mark.parametrize("label", range(8))
def test_lifting_and_group_convolutions_commute_with_d4(label):
    torch.manual_seed(1)
    lift, conv = LiftingConv2d(1, 4, 3), GroupConv2d(4, 5, 3)
    x = cells()
    lifted = lift(x)
    # Bit for bit: the polyphase choices downstream compare norms that must not differ by rounding.
    assert torch.equal(lift(GROUP.apply(x, label)), act(lifted, label))
    assert torch.equal(conv(act(lifted, label)), act(conv(lifted), label))
    if label:  # the group axis is permuted, not merely carried along: equivariance fails without it
        plain = GROUP.apply(conv(lifted).flatten(1, 2), label).flatten(1)
        assert relative(conv(act(lifted, label)).flatten(1), plain) > 1e-2


def test_group_convolution_gradients_match_finite_differences():
    torch.manual_seed(2)
    conv = GroupConv2d(2, 2, 3).double()
    x = torch.randn(1, 2, 8, 6, 6, dtype=torch.float64, requires_grad=True)
    weight = conv.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp, w: torch.func.functional_call(conv, {"weight": w}, (inp,)),
                                    (x, weight))


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("which", ["random", "symmetric"])
def test_encoder_is_exactly_invariant_to_d4_and_every_roll(mode, which):
    torch.manual_seed(3)
    encoder = getattr(P4MEncoder(fields=(4, 8, 8, 8), feature_dim=16), mode)()
    x = cells(4) if which == "random" else symmetric_cells()
    reference = encoder(x)
    generator = torch.Generator().manual_seed(4)
    for label in range(8):
        rolls = torch.randint(0, 32, (len(x), 2), generator=generator)
        moved = vectorised_roll(GROUP.apply(x, label), rolls)
        assert relative(encoder(moved), reference) <= TOL


def test_train_mode_invariance_with_a_different_element_and_roll_per_cell():
    """Batch statistics must not depend on which element or roll each cell of the batch carries."""
    torch.manual_seed(5)
    encoder = P4MEncoder(fields=(4, 8, 8, 8), feature_dim=16).train()
    x = cells(8)
    labels = torch.arange(8)
    moved = vectorised_roll(GROUP.apply_labels(x, labels), torch.randint(0, 32, (8, 2)))
    assert relative(encoder(moved), encoder(x)) <= TOL


def test_orbit_features_permute_and_average_to_the_features():
    torch.manual_seed(6)
    encoder = P4MEncoder(fields=(4, 8, 8, 8), feature_dim=16).eval()
    x = cells(2)
    orbit = encoder.orbit_features(x)
    assert orbit.shape == (8, 2, 16)
    assert torch.allclose(orbit.mean(0), encoder(x), atol=1e-6)
    for h in range(8):  # out[g](h·x) = out[g h](x), as ExactSymmetryEncoder.orbit_features
        products = [GROUP.label(GROUP.element(g) @ GROUP.element(h)) for g in range(8)]
        assert relative(encoder.orbit_features(GROUP.apply(x, h)), orbit[products]) <= TOL
    assert relative(orbit[1], orbit[0]) > 1e-3  # not trivially equal


def test_a_gradient_step_trains_and_keeps_the_invariance():
    torch.manual_seed(7)
    encoder = P4MEncoder(fields=(4, 8, 8, 8), feature_dim=16)
    optimiser = torch.optim.SGD(encoder.parameters(), lr=0.1)
    x = cells(4)
    before = [p.detach().clone() for p in encoder.parameters()]
    encoder(x).square().mean().backward()
    optimiser.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, encoder.parameters()))
    encoder.eval()
    assert relative(encoder(vectorised_roll(GROUP.apply(x, 5), torch.tensor([[3, 9]] * 4))), encoder(x)) <= TOL


def test_default_size_cost_and_factory():
    encoder = build_encoder("p4m")
    assert isinstance(encoder, P4MEncoder) and encoder.feature_dim == 256 and encoder.total_stride == 8
    assert is_exactly_symmetric(encoder) and not is_exactly_symmetric(build_encoder("small"))
    assert is_exactly_symmetric(build_encoder("small", exact_symmetry=True))
    assert isinstance(build_encoder("p4m", exact_symmetry=True), P4MEncoder)  # already exact: not wrapped
    with pytest.raises(PhotosslError, match="already exactly symmetric"):
        ExactSymmetryEncoder(encoder)
    # Weight sharing: fewer parameters than the plain 'small' encoder at about its arithmetic per field width.
    small_params = sum(p.numel() for p in build_encoder("small").parameters())
    p4m_params = sum(p.numel() for p in build_encoder("p4m", fields=(4, 8, 16, 16)).parameters())
    assert p4m_params < small_params / 4


def test_bad_arguments_and_sizes_are_refused():
    with pytest.raises(PhotosslError, match="fields"):
        P4MEncoder(fields=())
    with pytest.raises(PhotosslError, match="kernel_size"):
        GroupConv2d(2, 2, 4)
    with pytest.raises(PhotosslError, match="multiple"):
        P4MEncoder(fields=(4, 4, 4))(torch.randn(1, 1, 30, 30))
    with pytest.raises(PhotosslError, match="bad arguments"):
        build_encoder("p4m", circular_padding=False)


def test_state_dict_round_trip():
    torch.manual_seed(8)
    a, b = P4MEncoder(fields=(4, 8, 8, 8), feature_dim=16), P4MEncoder(fields=(4, 8, 8, 8), feature_dim=16)
    b.load_state_dict(a.state_dict())
    x = cells(2)
    assert torch.equal(a.eval()(x), b.eval()(x))
    assert not any("index" in key or "inverses" in key for key in a.state_dict())
