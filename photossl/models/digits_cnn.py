"""A small CNN for 1-channel digit images (MNIST, USPS, ... at 16–32 px)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from photossl.models._checks import positive_int, positive_ints


class DigitsCNN(nn.Module):
    """Stages of two 3×3 conv–BN–ReLU layers, 2× max-pool between stages, global average pool, linear.

    Digits are not periodic, so the convolutions pad with zeros. Default channels (32, 64, 128): a 28×28 digit
    goes 28 → 14 → 7 pixels; any size of at least 1 pixel works (pools use ``ceil_mode``).

    Shape: ``(B, in_channels, H, W) -> (B, feature_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        feature_dim: int = 128,
        channels: Sequence[int] = (32, 64, 128),
    ):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.feature_dim = positive_int("feature_dim", feature_dim)
        channels = positive_ints("channels", channels, min_len=1)

        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(channels):
            if i > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            for _ in range(2):
                layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
                cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, self.feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.body(x))
