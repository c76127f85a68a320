
import pytest
import torch
from torch import nn

from photossl.models import PeriodicConv2d, SmallEncoder


def test_shapes_and_defaults():
    model = SmallEncoder()
    assert model.feature_dim == 256 and model.total_stride == 8
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 256)
    assert model.feature_maps(torch.randn(3, 1, 32, 32)).shape == (3, 128, 4, 4)
    other = SmallEncoder(2, feature_dim=17, channels=(8, 16))
    assert other.total_stride == 2
    assert other(torch.randn(2, 2, 32, 32)).shape == (2, 17)


def test_layout_stride_two_stem_then_pooled_blocks():
    model = SmallEncoder()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1), (1, 1)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 128]
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 2
    sizes, x = [], torch.randn(2, 1, 32, 32)
    for layer in model.body:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            sizes.append(x.shape[-1])
    assert sizes == [16, 16, 8, 4]


def test_parameter_count():
    conv_bn = lambda cin, cout: cin * cout * 9 + 2 * cout  # noqa: E731 (no conv bias; BN weight and bias)
    expected = conv_bn(1, 32) + conv_bn(32, 64) + conv_bn(64, 128) + conv_bn(128, 128) + 128 * 256 + 256
    assert sum(p.numel() for p in SmallEncoder().parameters()) == expected


@pytest.mark.parametrize("size", [(1, 1), (7, 9), (16, 16), (64, 48)])
def test_other_input_sizes(size):
    assert SmallEncoder(channels=(4, 8, 8))(torch.randn(2, 1, *size)).shape == (2, 256)


def test_padding_option():
    convs = [m for m in SmallEncoder().modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(isinstance(m, PeriodicConv2d) for m in convs)
    assert not any(isinstance(m, PeriodicConv2d) for m in SmallEncoder(circular_padding=False).modules())


@torch.no_grad()
def test_exact_roll_symmetry_with_circular_padding():
    torch.manual_seed(0)
    model = SmallEncoder(channels=(8, 16, 16, 16), feature_dim=12).double().eval()
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    y, maps = model(x), model.feature_maps(x)
    for shift in [(8, 0), (0, 24), (16, -8)]:
        rolled = torch.roll(x, shift, (2, 3))
        # Equivariance of the last feature map (rolled by shift / 8), invariance of the pooled output.
        expected_maps = torch.roll(maps, (shift[0] // 8, shift[1] // 8), (2, 3))
        torch.testing.assert_close(model.feature_maps(rolled), expected_maps, rtol=0, atol=1e-12)
        torch.testing.assert_close(model(rolled), y, rtol=0, atol=1e-12)
    # Rolls that are not multiples of the total stride change the max-pool windows.
    assert (model(torch.roll(x, (1, 0), (2, 3))) - y).abs().max() > 1e-4
    assert (model(torch.roll(x, (0, 4), (2, 3))) - y).abs().max() > 1e-4


@torch.no_grad()
@pytest.mark.parametrize("channels,stride", [((4,), 2), ((4, 8), 2), ((4, 8, 8), 4), ((4, 8, 8, 8, 8), 16)])
def test_total_stride_is_the_exact_invariance_period(channels, stride):
    torch.manual_seed(0)
    model = SmallEncoder(channels=channels, feature_dim=6).double().eval()
    assert model.total_stride == stride
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    y = model(x)
    torch.testing.assert_close(model(torch.roll(x, (stride, 2 * stride), (2, 3))), y, rtol=0, atol=1e-12)
    assert (model(torch.roll(x, (stride // 2, 0), (2, 3))) - y).abs().max() > 1e-6


@torch.no_grad()
def test_zero_padding_breaks_the_roll_symmetry():
    torch.manual_seed(0)
    periodic = SmallEncoder(channels=(8, 16, 16, 16), feature_dim=12).double().eval()
    zero = SmallEncoder(channels=(8, 16, 16, 16), feature_dim=12, circular_padding=False).double().eval()
    zero.load_state_dict(periodic.state_dict())
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    assert (zero(torch.roll(x, (8, 0), (2, 3))) - zero(x)).abs().max() > 1e-4


def test_roll_invariance_holds_in_train_mode_too():
    # BatchNorm's batch statistics average over all pixels, so a common roll leaves them unchanged.
    torch.manual_seed(0)
    model = SmallEncoder(channels=(8, 16, 16), feature_dim=6).double().train()
    x = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(model(torch.roll(x, (4, 8), (2, 3))), model(x), rtol=0, atol=1e-12)


def test_same_seed_same_output():
    def run(seed):
        torch.manual_seed(seed)
        return SmallEncoder()(torch.randn(4, 1, 32, 32))

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_gradients_reach_every_parameter():
    model = SmallEncoder()
    model(torch.randn(4, 1, 32, 32)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs,name",
    [({"channels": ()}, "channels"), ({"channels": (8, 0)}, "channels"), ({"feature_dim": 0}, "feature_dim"),
     ({"in_channels": 1.5}, "in_channels")],
)
def test_bad_hyper_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SmallEncoder(**kwargs)
