"""The photonic-crystal encoder of E-SSL (Dangovski et al., ICLR 2022), with optional periodic padding."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from photossl.errors import PhotosslError
from photossl.models._checks import positive_int, positive_ints
from photossl.models.periodic_conv import same_conv2d


class ESSLEncoder(nn.Module):
    """Three wide-kernel conv blocks and a two-layer MLP: E-SSL's photonics encoder (5,331,712 parameters).

    conv 1→64 k7, BN, ReLU, max-pool 2; conv 64→256 k7, BN, ReLU, max-pool 4; conv 256→256 k7, BN, ReLU,
    global max-pool; FC 256→1024, ReLU; FC 1024→1024.

    On 32×32 inputs the last map is 4×4, so the global max-pool is exactly the reference's max-pool 4 and
    ``circular_padding=False`` gives the reference network (zero padding 3; its state-dict keys are the
    reference's with ``enc_block2d.`` → ``features.`` and ``fcpart.`` → ``head.``). Other sizes work too:
    the two fixed pools use ``ceil_mode`` (no border row of the cell is dropped) and the global pool takes
    whatever map remains.

    ``circular_padding=True`` (default) pads periodically, as befits a unit cell; the convolutions then commute
    with lattice translations and the output is *exactly invariant* to rolls of the input by multiples of
    8 pixels (the product of the fixed pool strides; sizes divisible by 8). Consequence: a task that
    predicts half-cell translations (E-SSL's "blob" set) cannot be learned with periodic padding.

    Shape: ``(B, in_channels, H, W) -> (B, feature_dim)``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        channels: Sequence[int] = (64, 256, 256),
        hidden_dim: int = 1024,
        feature_dim: int = 1024,
        kernel_size: int = 7,
        circular_padding: bool = True,
    ):
        super().__init__()
        in_channels = positive_int("in_channels", in_channels)
        channels = positive_ints("channels", channels, min_len=3)
        if len(channels) != 3:
            raise PhotosslError(f"channels must have exactly 3 entries, got {list(channels)}")
        c1, c2, c3 = channels
        self.in_channels = in_channels
        self.feature_dim = positive_int("feature_dim", feature_dim)
        self.circular_padding = bool(circular_padding)

        def block(cin: int, cout: int) -> list[nn.Module]:
            # The conv bias before BN is redundant but kept so parameter counts match the reference.
            conv = same_conv2d(cin, cout, kernel_size, circular=self.circular_padding, bias=True)
            return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(in_channels, c1),
            nn.MaxPool2d(2, ceil_mode=True),
            *block(c1, c2),
            nn.MaxPool2d(4, ceil_mode=True),
            *block(c2, c3),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(c3, positive_int("hidden_dim", hidden_dim)),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, self.feature_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

