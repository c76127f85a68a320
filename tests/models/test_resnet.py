import pytest
import torch
from torch import nn

from photossl.models import BasicBlock, CifarResNet, cifar_resnet18


def _conv(cin, cout, k):
    return cin * cout * k * k


def _resnet18_params(in_channels):
    """Count from the architecture: stem, 8 BasicBlocks, 3 projection shortcuts (all convs bias-free, BN = 2c)."""
    bn = lambda c: 2 * c  # noqa: E731
    total = _conv(in_channels, 64, 3) + bn(64)
    cin = 64
    for width in (64, 128, 256, 512):
        for _ in range(2):
            total += _conv(cin, width, 3) + bn(width) + _conv(width, width, 3) + bn(width)
            if cin != width:
                total += _conv(cin, width, 1) + bn(width)
            cin = width
    return total


def test_parameter_count():
    assert _resnet18_params(3) == 11_168_832
    model = cifar_resnet18()
    assert sum(p.numel() for p in model.parameters()) == 11_168_832
    # With a 10-class fc on top: the familiar ~11.17 M.
    classifier = nn.Linear(model.feature_dim, 10)
    assert sum(p.numel() for p in [*model.parameters(), *classifier.parameters()]) == 11_173_962
    assert sum(p.numel() for p in cifar_resnet18(in_channels=1).parameters()) == _resnet18_params(1)


@torch.no_grad()
def test_cifar_stem_keeps_resolution_and_output_is_512():
    model = cifar_resnet18().eval()
    assert model.feature_dim == 512
    x = torch.randn(1, 3, 32, 32)
    stem = model.stem(x)
    assert stem.shape == (1, 64, 32, 32)  # 3×3 stride-1 stem, no max-pool
    maps = model.stages(stem)
    assert maps.shape == (1, 512, 4, 4)
    torch.testing.assert_close(model(x), maps.mean((2, 3)))
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 512)
    assert not any(isinstance(m, (nn.MaxPool2d, nn.Linear)) for m in model.modules())


def test_block_layout():
    model = cifar_resnet18()
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8
    assert [b.downsample is not None for b in blocks] == [False, False, True, False, True, False, True, False]


def test_zero_init_residual_makes_blocks_identity_like():
    torch.manual_seed(0)
    model = cifar_resnet18(zero_init_residual=True).eval()
    block = model.stages[0][0]
    assert torch.count_nonzero(block.bn2.weight) == 0
    x = torch.relu(torch.randn(2, 64, 8, 8))
    torch.testing.assert_close(block(x), x)


def test_same_seed_same_output():
    def run(seed):
        torch.manual_seed(seed)
        return CifarResNet((1, 1), widths=(8, 16))(torch.randn(2, 3, 16, 16))

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


@pytest.mark.parametrize(
    "kwargs,name",
    [({"blocks": (2, 2), "widths": (8,)}, "widths"), ({"blocks": (0,), "widths": (8,)}, "blocks"),
     ({"in_channels": 0}, "in_channels")],
)
def test_bad_hyper_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        CifarResNet(**kwargs)
