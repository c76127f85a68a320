import pytest
import torch
from torch import nn

from photossl.models import DigitsCNN, PeriodicConv2d


@pytest.mark.parametrize("size", [16, 28, 32])
def test_shapes(size):
    model = DigitsCNN(feature_dim=64)
    assert model.feature_dim == 64
    assert model(torch.randn(3, 1, size, size)).shape == (3, 64)


def test_zero_padding_and_layout():
    model = DigitsCNN()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and not any(isinstance(m, PeriodicConv2d) for m in convs)
    assert all(m.padding == (1, 1) for m in convs)
    assert DigitsCNN(3, channels=(8,))(torch.randn(2, 3, 16, 16)).shape == (2, 128)


@torch.no_grad()
def test_zero_padding_sees_the_border():
    # A roll by the total stride moves the digit across the image edge; zero padding must notice.
    torch.manual_seed(0)
    model = DigitsCNN(channels=(8, 8, 8)).double().eval()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    assert (model(torch.roll(x, (4, 0), (2, 3))) - model(x)).abs().max() > 1e-4


def test_same_seed_same_output():
    def run(seed):
        torch.manual_seed(seed)
        return DigitsCNN()(torch.randn(2, 1, 28, 28))

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


@pytest.mark.parametrize("kwargs,name", [({"feature_dim": 0}, "feature_dim"), ({"channels": ()}, "channels")])
def test_bad_hyper_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        DigitsCNN(**kwargs)
