import pytest
import torch
from torch import nn

from photossl.models import ESSLEncoder, PeriodicConv2d


def _conv(cin, cout, k):
    return cin * cout * k * k + cout


def _lin(din, dout):
    return din * dout + dout


# conv+BN (weight, bias) blocks, then the two FC layers of the spec.
ESSL_PARAMS = (
    _conv(1, 64, 7) + 2 * 64 + _conv(64, 256, 7) + 2 * 256 + _conv(256, 256, 7) + 2 * 256
    + _lin(256, 1024) + _lin(1024, 1024)
)


def _reference_essl():
    """The published encoder, written out layer by layer (zero padding 3, max-pools 2, 4, 4)."""
    enc = nn.Sequential(
        nn.Conv2d(1, 64, 7, padding=3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(64, 256, 7, padding=3), nn.BatchNorm2d(256), nn.ReLU(), nn.MaxPool2d(4, 4),
        nn.Conv2d(256, 256, 7, padding=3), nn.BatchNorm2d(256), nn.ReLU(), nn.MaxPool2d(4, 4),
    )
    fc = nn.Sequential(nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024))
    return enc, fc


def test_parameter_count_is_the_spec():
    assert ESSL_PARAMS == 5_331_712
    for circular in (True, False):
        model = ESSLEncoder(circular_padding=circular)
        assert sum(p.numel() for p in model.parameters()) == ESSL_PARAMS


def test_shape_and_feature_dim():
    model = ESSLEncoder()
    assert model.feature_dim == 1024
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 1024)
    small = ESSLEncoder(2, channels=(4, 8, 8), hidden_dim=16, feature_dim=5)
    assert small(torch.randn(2, 2, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("size", [(4, 4), (8, 8), (16, 16), (20, 24), (33, 33), (64, 64)])
@pytest.mark.parametrize("circular", [True, False])
def test_other_input_sizes(size, circular):
    model = ESSLEncoder(channels=(4, 8, 8), hidden_dim=16, feature_dim=6, circular_padding=circular)
    assert model(torch.randn(2, 1, *size)).shape == (2, 6)


@torch.no_grad()
def test_zero_padding_variant_is_the_reference_network_on_32px():
    torch.manual_seed(0)
    model = ESSLEncoder(circular_padding=False).double().eval()
    for m in model.modules():  # non-trivial BN statistics, so the comparison sees them
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    enc, fc = (m.double().eval() for m in _reference_essl())
    state = model.state_dict()
    enc.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    fc.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
    x = torch.randn(4, 1, 32, 32, dtype=torch.float64)
    expected = fc(enc(x).view(-1, 256))
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-12)
    periodic = ESSLEncoder(circular_padding=True).double().eval()
    periodic.load_state_dict(state)
    assert (periodic(x) - expected).abs().max() > 1e-6


def test_circular_option_chooses_the_convolution():
    assert all(isinstance(m, PeriodicConv2d) for m in ESSLEncoder().modules() if isinstance(m, nn.Conv2d))
    zero = ESSLEncoder(circular_padding=False)
    assert not any(isinstance(m, PeriodicConv2d) for m in zero.modules())
    assert all(m.padding == (3, 3) for m in zero.modules() if isinstance(m, nn.Conv2d))


@torch.no_grad()
def test_first_conv_block_is_translation_equivariant_for_any_roll():
    torch.manual_seed(0)
    model = ESSLEncoder().double().eval()
    block = model.features[:3]  # conv, BN, ReLU: the pre-pool map
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    for shift in [(1, 0), (3, 5), (-7, 16)]:
        torch.testing.assert_close(block(torch.roll(x, shift, (2, 3))), torch.roll(block(x), shift, (2, 3)),
                                   rtol=0, atol=1e-12)


@torch.no_grad()
def test_output_is_invariant_to_rolls_by_multiples_of_8_with_circular_padding_only():
    torch.manual_seed(0)
    model = ESSLEncoder(channels=(8, 16, 16), hidden_dim=32, feature_dim=16).double().eval()
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    y = model(x)
    for shift in [(8, 0), (0, 16), (24, 8), (-8, 16)]:
        torch.testing.assert_close(model(torch.roll(x, shift, (2, 3))), y, rtol=0, atol=1e-12)
    # 8 px is the exact period: a 1- or 4-px roll moves features across max-pool windows.
    for shift in [(1, 0), (0, 4)]:
        assert (model(torch.roll(x, shift, (2, 3))) - y).abs().max() > 1e-4
    zero = ESSLEncoder(channels=(8, 16, 16), hidden_dim=32, feature_dim=16, circular_padding=False).double().eval()
    zero.load_state_dict(model.state_dict())
    assert (zero(torch.roll(x, (8, 0), (2, 3))) - zero(x)).abs().max() > 1e-4


def test_same_seed_same_output():
    def run(seed):
        torch.manual_seed(seed)
        model = ESSLEncoder(channels=(4, 8, 8), hidden_dim=16, feature_dim=8)
        return model(torch.randn(4, 1, 32, 32))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


@pytest.mark.parametrize(
    "kwargs,name",
    [({"channels": (4, 8)}, "channels"), ({"feature_dim": 0}, "feature_dim"), ({"hidden_dim": -1}, "hidden_dim"),
     ({"kernel_size": 4}, "kernel_size"), ({"in_channels": 0}, "in_channels")],
)
def test_bad_hyper_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ESSLEncoder(**kwargs)
