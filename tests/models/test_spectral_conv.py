import pytest
import torch
import torch.nn.functional as F

from photossl.models import (
    ESSLEncoder,
    PeriodicConv2d,
    periodic_pad,
    spectral_periodic_conv2d,
)
from photossl.models.exact_symmetry import make_shift_invariant
from photossl.models.spectral_conv import kernel_spectrum


def _direct(x, weight, bias):
    return F.conv2d(periodic_pad(x, weight.shape[-1] // 2), weight, bias)


@pytest.mark.parametrize("k,size", [(7, (16, 16)), (7, (4, 4)), (7, (9, 10)), (7, (2, 3)), (5, (1, 1)), (3, (8, 5))])
def test_spectral_conv_is_circular_correlation(k, size, circular_correlation):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    weight = torch.randn(4, 3, k, k, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    expected = circular_correlation(x, weight, bias)
    torch.testing.assert_close(spectral_periodic_conv2d(x, weight, bias), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(spectral_periodic_conv2d(x, weight), expected - bias.view(1, -1, 1, 1), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("size", [(16, 16), (4, 4), (7, 6)])
def test_spectral_conv_gradients_equal_the_direct_ones(size):
    torch.manual_seed(1)
    x = torch.randn(3, 5, *size, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 5, 7, 7, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 6, *size, dtype=torch.float64)
    expected = torch.autograd.grad(_direct(x, weight, bias), (x, weight, bias), g)
    got = torch.autograd.grad(spectral_periodic_conv2d(x, weight, bias), (x, weight, bias), g)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_spectral_conv_float32_matches_to_rounding():
    torch.manual_seed(2)
    x = torch.randn(8, 64, 16, 16)
    weight = torch.randn(32, 64, 7, 7) * 0.02
    expected = _direct(x.double(), weight.double(), None)
    error = (spectral_periodic_conv2d(x, weight) - expected).abs().max() / expected.abs().max()
    assert error < 1e-5


def test_kernel_spectrum_acts_on_interleaved_spectra():
    torch.manual_seed(3)
    weight = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    x = torch.randn(1, 3, 6, 8, dtype=torch.float64)
    k = kernel_spectrum(weight, 6, 8)
    assert k.shape == (6 * 5, 6, 4)
    spectrum = torch.view_as_real(torch.fft.rfft2(x)[0]).permute(1, 2, 0, 3).reshape(30, 6)  # (F, (c, re/im))
    out = torch.einsum("fi,fio->fo", spectrum, k).reshape(6, 5, 2, 2)
    y = torch.fft.irfft2(torch.view_as_complex(out.contiguous()).permute(2, 0, 1), s=(6, 8))
    torch.testing.assert_close(y, _direct(x, weight, None)[0], rtol=0, atol=1e-12)


def test_periodic_conv_takes_the_fourier_path_where_it_pays_and_agrees_with_the_direct_one():
    torch.manual_seed(4)
    conv = PeriodicConv2d(16, 8, 7).double()
    x = torch.randn(2, 16, 12, 12, dtype=torch.float64, requires_grad=True)
    assert conv._fourier_pays(x)
    assert not PeriodicConv2d(1, 8, 7)._fourier_pays(torch.zeros(1, 1, 8, 8))  # one input channel: direct
    assert not PeriodicConv2d(16, 8, 3)._fourier_pays(torch.zeros(1, 16, 8, 8))  # 3×3: direct
    assert not PeriodicConv2d(16, 8, 7, stride=2)._fourier_pays(torch.zeros(1, 16, 8, 8))
    fast = conv(x)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), conv.weight)
    conv.fourier = False
    assert not conv._fourier_pays(x) and "fourier=False" in repr(conv)
    slow = conv(x)
    (g_slow,) = torch.autograd.grad(slow.square().sum(), conv.weight)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-12, atol=1e-10)


def test_exact_shift_invariance_switches_to_direct_convolutions():
    encoder = make_shift_invariant(ESSLEncoder(channels=(8, 16, 16), hidden_dim=8, feature_dim=8))
    assert all(not m.fourier for m in encoder.modules() if isinstance(m, PeriodicConv2d))
