"""A light CNN for periodic unit cells: the fast default encoder on CPU."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from photossl.models._checks import positive_int, positive_ints
from photossl.models.periodic_conv import same_conv2d


class SmallEncoder(nn.Module):
    """Conv 3×3 blocks (BN, ReLU) with 2× max-pools between them, global average pool, linear map to features.

    Default: channels (32, 64, 128, 128) on 32×32 → 16×16 → 8×8 → 4×4 maps, 256-d output, about 0.27 M
    parameters. SPEEDUP_NOTE

    With ``circular_padding=True`` (default) every conv commutes with rolls of the cell, so the output is
    exactly invariant (eval mode) to rolls of the input by multiples of ``total_stride`` = 2^(blocks−1)
    pixels, and equivariant feature maps are available from :meth:`feature_maps`. Pools use ``ceil_mode``
    so odd sizes keep every pixel.

    Shape: ``(B, in_channels, H, W) -> (B, feature_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        feature_dim: int = 256,
        channels: Sequence[int] = (32, 64, 128, 128),
        circular_padding: bool = True,
    ):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.feature_dim = positive_int("feature_dim", feature_dim)
        channels = positive_ints("channels", channels, min_len=1)
        self.circular_padding = bool(circular_padding)
        self.total_stride = 2 ** (len(channels) - 1)

        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(channels):
            if i > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            # No conv bias: the BN right after it has one.
            layers += [
                same_conv2d(cin, cout, 3, circular=self.circular_padding, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, self.feature_dim)

    def feature_maps(self, x: Tensor) -> Tensor:
        """Last conv block's output. Shape: ``(B, in_channels, H, W) -> (B, channels[-1], ⌈H/s⌉, ⌈W/s⌉)``."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.body(x)))
