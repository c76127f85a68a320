"""Convolutions for periodic images (unit cells): wrap-around padding instead of zeros."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from photossl.errors import PhotosslError


class _PeriodicPad(torch.autograd.Function):
    """``F.pad(mode="circular")`` with a backward that folds the border gradients back onto the interior.

    Autograd's own backward of circular padding materialises a zero tensor per slice and copies into it;
    the fold is several times cheaper, and that backward was most of the cost of periodic padding in a step.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, pad: int) -> Tensor:
        if x.dim() in (3, 4):
            return F.pad(x, (pad, pad, pad, pad), mode="circular")
        # F.pad's circular mode only takes (C, H, W) or (B, C, H, W).
        h, w = x.shape[-2:]
        out = F.pad(x.reshape(-1, h, w), (pad, pad, pad, pad), mode="circular")
        return out.reshape(*x.shape[:-2], h + 2 * pad, w + 2 * pad)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.pad = inputs[1]

    @staticmethod
    def backward(ctx, grad: Tensor):
        p = ctx.pad
        cols = grad[..., p:-p].clone()
        cols[..., -p:] += grad[..., :p]  # the left pad holds the last p columns
        cols[..., :p] += grad[..., -p:]
        out = cols[..., p:-p, :].clone()
        out[..., -p:, :] += cols[..., :p, :]
        out[..., :p, :] += cols[..., -p:, :]
        return out, None


def periodic_pad(x: Tensor, pad: int) -> Tensor:
    """Pad the two trailing (spatial) dims periodically by ``pad`` on every side.

    Shape: ``(..., H, W) -> (..., H + 2 pad, W + 2 pad)``. Same values as ``F.pad(x, (pad,) * 4, "circular")``,
    with a cheaper backward, and it also works when ``pad`` exceeds ``H`` or ``W`` (the map is then tiled as
    often as needed), which happens when a wide kernel meets a small, deeply pooled map of a periodic cell.
    """
    if pad < 0:
        raise PhotosslError(f"pad must be >= 0, got {pad}")
    if pad == 0:
        return x
    h, w = x.shape[-2:]
    if pad <= h and pad <= w:
        return _PeriodicPad.apply(x, pad)
    rows = torch.arange(-pad, h + pad, device=x.device) % h
    cols = torch.arange(-pad, w + pad, device=x.device) % w
    return x.index_select(-2, rows).index_select(-1, cols)


class PeriodicConv2d(nn.Conv2d):
    """2-D convolution of a periodic image: odd square kernel, wrap-around padding of ``kernel_size // 2``.

    With ``stride=1`` a roll of the input by any ``(dy, dx)`` rolls the output by the same ``(dy, dx)``: the
    layer commutes with every lattice translation of the pixel grid. With stride ``s`` the same holds for
    rolls by multiples of ``s`` (the output rolls by ``(dy/s, dx/s)``).

    Shape: ``(B, C_in, H, W) -> (B, C_out, ⌈H/stride⌉, ⌈W/stride⌉)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        _check_kernel(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.periodic_padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(periodic_pad(x, self.periodic_padding))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", periodic_padding={self.periodic_padding}"


def _check_kernel(kernel_size: int) -> None:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise PhotosslError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")


def same_conv2d(
    in_channels: int, out_channels: int, kernel_size: int, *, circular: bool, stride: int = 1, bias: bool = True
) -> nn.Conv2d:
    """Convolution padded by ``kernel_size // 2``, periodically if ``circular``, else with zeros.

    Shape: ``(B, C_in, H, W) -> (B, C_out, ⌈H/stride⌉, ⌈W/stride⌉)``.
    """
    if circular:
        return PeriodicConv2d(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
    _check_kernel(kernel_size)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)
