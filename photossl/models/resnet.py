"""CIFAR ResNet-18 (He et al. 2016, CIFAR variant: 3×3 stem, stride 1, no max-pool), as a feature extractor."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from photossl.errors import PhotosslError
from photossl.models._checks import positive_int, positive_ints


class BasicBlock(nn.Module):
    """Two 3×3 conv–BN layers plus a shortcut (1×1 conv–BN when the shape changes), ReLU after the sum.

    Shape: ``(B, in_planes, H, W) -> (B, planes, ⌈H/stride⌉, ⌈W/stride⌉)``.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class CifarResNet(nn.Module):
    """ResNet with BasicBlocks and a CIFAR stem; returns the globally average-pooled last stage (no fc).

    Shape: ``(B, in_channels, H, W) -> (B, feature_dim)`` with ``feature_dim = widths[-1]``.
    """

    def __init__(
        self,
        blocks: Sequence[int] = (2, 2, 2, 2),
        *,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        zero_init_residual: bool = False,
    ):
        super().__init__()
        blocks = positive_ints("blocks", blocks, min_len=1)
        widths = positive_ints("widths", widths, min_len=1)
        if len(blocks) != len(widths):
            raise PhotosslError(f"blocks and widths must have the same length, got {list(blocks)} and {list(widths)}")
        self.in_channels = positive_int("in_channels", in_channels)
        self.feature_dim = widths[-1]

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages: list[nn.Module] = []
        planes = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            stage = [BasicBlock(planes, w, stride)] + [BasicBlock(w, w) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            planes = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            # Each residual branch then starts as zero, so every block starts as the identity.
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.stages(self.stem(x)))


def cifar_resnet18(in_channels: int = 3, *, zero_init_residual: bool = False) -> CifarResNet:
    """CIFAR ResNet-18: BasicBlocks [2, 2, 2, 2], widths 64–512, 512-d output, 11,168,832 parameters (3 channels)."""
    return CifarResNet((2, 2, 2, 2), in_channels=in_channels, zero_init_residual=zero_init_residual)
