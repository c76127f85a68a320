"""Convolutions for periodic images (unit cells): wrap-around padding instead of zeros."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from photossl.errors import PhotosslError


def _wrap(x: Tensor, pad: int) -> Tensor:
    x = torch.cat([x[..., -pad:, :], x, x[..., :pad, :]], dim=-2)
    return torch.cat([x[..., -pad:], x, x[..., :pad]], dim=-1)


class _PeriodicPad(torch.autograd.Function):
    """Wrap-around padding whose backward folds the border gradients back in place.

    Autograd's own backward of ``F.pad(mode="circular")`` (or of the two ``cat``) materialises a zero tensor
    per slice and copies into it; this fold is several times cheaper and is most of the cost of periodic
    padding in a training step.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, pad: int) -> Tensor:
        return _wrap(x, pad)

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
    """Stride-1, size-preserving 2-D convolution of a periodic image (odd square kernel, wrap-around padding).

    A roll of the input by any ``(dy, dx)`` rolls the output by the same ``(dy, dx)``: the layer commutes with
    the lattice translations of the unit cell. Shape: ``(B, C_in, H, W) -> (B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise PhotosslError(f"kernel_size must be a positive odd integer, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=bias)
        self.periodic_padding = kernel_size // 2

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(periodic_pad(x, self.periodic_padding))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", periodic_padding={self.periodic_padding}"


def same_conv2d(
    in_channels: int, out_channels: int, kernel_size: int, *, circular: bool, bias: bool = True
) -> nn.Conv2d:
    """A stride-1 convolution that keeps ``H, W``: periodic padding if ``circular``, else zero padding."""
    if circular:
        return PeriodicConv2d(in_channels, out_channels, kernel_size, bias=bias)
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise PhotosslError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
