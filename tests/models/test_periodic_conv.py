import pytest
import torch
import torch.nn.functional as F

from photossl.models import PeriodicConv2d, periodic_pad, same_conv2d


def _tiled_pad(x, pad):
    """Reference: tile the map 2k+1 times each way and crop the centre, k large enough."""
    h, w = x.shape[-2:]
    k = max(pad // h, pad // w) + 1
    big = x.repeat(1, 1, 2 * k + 1, 2 * k + 1)
    return big[..., k * h - pad : (k + 1) * h + pad, k * w - pad : (k + 1) * w + pad]


@pytest.mark.parametrize("size,pad", [((5, 6), 0), ((5, 6), 2), ((5, 6), 5), ((2, 3), 3), ((1, 1), 3), ((4, 2), 7)])
def test_periodic_pad_matches_tiling(size, pad):
    x = torch.randn(2, 3, *size)
    out = periodic_pad(x, pad)
    assert out.shape == (2, 3, size[0] + 2 * pad, size[1] + 2 * pad)
    assert torch.equal(out, _tiled_pad(x, pad))


def test_periodic_pad_agrees_with_circular_fpad_where_that_works():
    x = torch.randn(1, 2, 6, 6)
    assert torch.equal(periodic_pad(x, 3), F.pad(x, (3, 3, 3, 3), mode="circular"))


def test_periodic_pad_rejects_negative_pad():
    with pytest.raises(ValueError, match="pad"):
        periodic_pad(torch.zeros(1, 1, 4, 4), -1)


@pytest.mark.parametrize("k,size,stride", [(3, 8, 1), (7, 8, 1), (7, 4, 1), (7, 2, 1), (5, 1, 1), (3, 8, 2), (3, 7, 2)])
def test_periodic_conv_is_circular_correlation(k, size, stride, circular_correlation):
    torch.manual_seed(0)
    conv = PeriodicConv2d(3, 4, k, stride=stride).double()
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    expected = circular_correlation(x, conv.weight, conv.bias)[..., ::stride, ::stride]
    torch.testing.assert_close(conv(x), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shift", [(1, 0), (0, 3), (5, 7), (-2, 31)])
def test_periodic_conv_commutes_with_every_roll_and_zero_padding_does_not(shift):
    torch.manual_seed(1)
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    roll = lambda t: torch.roll(t, shift, dims=(-2, -1))  # noqa: E731
    periodic = same_conv2d(1, 8, 7, circular=True).double()
    torch.testing.assert_close(periodic(roll(x)), roll(periodic(x)), rtol=0, atol=1e-12)
    zero = same_conv2d(1, 8, 7, circular=False).double()
    zero.load_state_dict(periodic.state_dict())
    assert (zero(roll(x)) - roll(zero(x))).abs().max() > 1e-2
    # Away from the borders the two paddings agree: only the wrap-around differs.
    torch.testing.assert_close(zero(x)[..., 3:-3, 3:-3], periodic(x)[..., 3:-3, 3:-3], rtol=0, atol=1e-12)


def test_strided_periodic_conv_commutes_with_rolls_by_multiples_of_the_stride():
    torch.manual_seed(2)
    conv = same_conv2d(2, 4, 3, circular=True, stride=2).double()
    x = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    y = conv(x)
    assert y.shape == (2, 4, 8, 8)
    torch.testing.assert_close(conv(torch.roll(x, (2, -6), (2, 3))), torch.roll(y, (1, -3), (2, 3)), rtol=0, atol=1e-12)
    assert (conv(torch.roll(x, (1, 0), (2, 3))) - torch.roll(y, (1, 0), (2, 3))).abs().max() > 1e-2


def test_zero_padded_same_conv_output_size():
    assert same_conv2d(1, 2, 5, circular=False, stride=2)(torch.randn(1, 1, 7, 9)).shape == (1, 2, 4, 5)
    assert same_conv2d(1, 2, 5, circular=True, stride=2)(torch.randn(1, 1, 7, 9)).shape == (1, 2, 4, 5)


@pytest.mark.parametrize("k", [0, 2, 4])
def test_even_or_empty_kernels_are_rejected(k):
    with pytest.raises(ValueError, match="kernel_size"):
        PeriodicConv2d(1, 1, k)
    with pytest.raises(ValueError, match="kernel_size"):
        same_conv2d(1, 1, k, circular=False)


@pytest.mark.parametrize("size,pad", [((5, 6), 1), ((5, 6), 3), ((4, 4), 4), ((2, 3), 3)])
def test_periodic_pad_gradient(size, pad):
    x = torch.randn(2, 2, *size, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: periodic_pad(t, pad), (x,))
    g = torch.randn(2, 2, size[0] + 2 * pad, size[1] + 2 * pad, dtype=torch.float64)
    (grad,) = torch.autograd.grad(periodic_pad(x, pad), x, g)
    (expected,) = torch.autograd.grad(_tiled_pad(x, pad), x, g)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


def test_periodic_pad_second_derivative():
    x = torch.randn(1, 1, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: periodic_pad(t, 2).pow(2), (x,))


def test_periodic_pad_under_vmap():
    x = torch.randn(3, 2, 1, 5, 6)
    out = torch.vmap(lambda t: periodic_pad(t, 2))(x)
    assert torch.equal(out, torch.stack([periodic_pad(t, 2) for t in x]))


@pytest.mark.parametrize("shape", [(5, 6), (3, 5, 6), (2, 3, 5, 6), (2, 2, 3, 5, 6)])
def test_periodic_pad_any_leading_dims(shape):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    out = periodic_pad(x, 2)
    assert torch.equal(out, _tiled_pad(x.detach().reshape(1, -1, *shape[-2:]), 2).reshape(out.shape))
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, x, g)
    (expected,) = torch.autograd.grad(_tiled_pad(x.reshape(1, -1, *shape[-2:]), 2).reshape(out.shape), x, g)
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)


def test_periodic_pad_channels_last_input():
    x = torch.randn(2, 3, 5, 6).to(memory_format=torch.channels_last).requires_grad_()
    out = periodic_pad(x, 1)
    assert torch.equal(out, _tiled_pad(x.detach(), 1))
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 1.0) + _border_count(5, 6, 1))


def _border_count(h, w, p):
    """How many extra copies of each pixel the padding makes (sum of the padded map's gradient minus one)."""
    ones = torch.ones(1, 1, h, w, requires_grad=True)
    _tiled_pad(ones, p).sum().backward()
    return ones.grad - 1
