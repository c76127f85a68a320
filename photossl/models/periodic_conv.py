"""Convolutions for periodic images (unit cells): wrap-around padding instead of zeros."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from photossl.errors import PhotosslError
from photossl.models.spectral_conv import spectral_periodic_conv2d
from photossl.symmetry.pixel_action import vectorised_roll

# Fourier-space convolution pays on the CPU from 5×5 kernels and 8 input channels on (measured: 4× for E-SSL's
# 64→256 7×7 layer on 16×16 maps, 6× for 256→256 on 4×4; 3×3 kernels and single-channel inputs are
# faster direct).
_FOURIER_MIN_KERNEL = 5
_FOURIER_MIN_IN_CHANNELS = 8


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


def aps_phase(x: Tensor, stride: int) -> Tensor:
    """Adaptive polyphase sampling (Chaman & Dokmanić, CVPR 2021): the sub-grid of largest norm, per sample.

    Of the ``stride²`` polyphase components ``x[b, :, a::stride, c::stride]`` each sample picks the one with the
    largest ℓ2 norm over all its channels (on an exact tie the first in (a, c) order) and returns its offset (a, c).
    A periodic roll of ``x`` by any integer amount permutes the components and rolls each, so the picked component
    is the one picked before, rolled by an integer amount: keeping it makes stride-``s`` subsampling equivariant to
    every roll instead of to multiples of ``s`` (:func:`aps_downsample`). No gradient flows through the choice.

    A roll changes the order in which a component's squares are summed, hence the rounding of its norm. The norms
    are computed in float32 (≲ 1e-6 relative error) and, for the samples whose two largest norms lie within 1e-4 of
    each other, summed again in float64 (≈ 1e-15), so that rounding cannot flip the choice between components that
    differ. Components that are identical (a map with a translation symmetry) tie exactly and either is right.
    Components that differ can also tie exactly: on two-valued cells, a component's norm only counts how often each
    local pattern occurs, and two sub-grids can hold the same counts. Norms within 1e-9 of the largest are
    compared again by :func:`_context_keys`, sums over neighbouring pixels that rolls, rotations, mirrors and
    permutations of the channels leave unchanged. Only an exact tie in those too falls back to the (a, c) order.

    Shape: ``(B, C, H, W) -> (B, 2)`` long; ``H`` and ``W`` must be multiples of ``stride``.
    """
    batch, channels, h, w = x.shape
    if h % stride or w % stride:
        raise PhotosslError(
            f"adaptive polyphase sampling with stride {stride} needs a map whose size is a multiple of it, got "
            f"{h}×{w} (use cells whose size is a multiple of the encoder's total stride)"
        )
    with torch.no_grad():
        phases = x.detach().reshape(batch, channels, h // stride, stride, w // stride, stride)
        norm = torch.linalg.vector_norm(phases, dim=(1, 2, 4), dtype=torch.float32).reshape(batch, stride * stride)
        if stride * stride > 1:
            top = norm.topk(2, dim=1).values
            close = top[:, 0] - top[:, 1] <= 1e-4 * top[:, 0]
            if bool(close.any()):
                norm = norm.double()
                norm[close] = torch.linalg.vector_norm(phases[close], dim=(1, 2, 4), dtype=torch.float64).reshape(
                    -1, stride * stride)
        choice = norm.argmax(1)  # the first maximum on ties
        if stride * stride > 1 and norm.dtype == torch.float64:
            top = norm.topk(2, dim=1).values
            for b in torch.nonzero(top[:, 0] - top[:, 1] <= _TIE * top[:, 0]).flatten().tolist():
                choice[b] = _break_tie(phases[b], norm[b], stride)
    return torch.stack([choice // stride, choice % stride], 1)


_TIE = 1e-9


def _context_keys(component: Tensor) -> list[float]:
    """Sums of products of neighbouring pixels of one polyphase component (C, h, w), in float64: along the axes,
    then along the diagonals. Each is unchanged by rolls, by D4 acting on the pixels and by permuting channels."""
    c = component.double()
    axes = (c * c.roll(1, -1)).sum() + (c * c.roll(1, -2)).sum()
    diagonals = (c * c.roll((1, 1), (-2, -1))).sum() + (c * c.roll((1, -1), (-2, -1))).sum()
    return [float(axes), float(diagonals)]


def _break_tie(phases: Tensor, norm: Tensor, stride: int) -> int:
    """Among the components of one sample whose norms lie within ``_TIE`` of the largest, the one with the largest
    context keys (compared in turn, each within ``_TIE``); the first in (a, c) order if they all tie.
    ``phases`` (C, h, s, w, s), ``norm`` (s²,) float64."""
    best = float(norm.max())
    candidates = [i for i in range(stride * stride) if float(norm[i]) >= best * (1 - _TIE)]
    if len(candidates) > 1:
        keys = {i: _context_keys(phases[:, :, i // stride, :, i % stride]) for i in candidates}
        for k in range(2):
            top = max(keys[i][k] for i in candidates)
            candidates = [i for i in candidates if keys[i][k] >= top - _TIE * max(abs(top), 1e-300)]
            if len(candidates) == 1:
                break
    return candidates[0]


def aps_downsample(x: Tensor, stride: int) -> Tensor:
    """The polyphase component of largest norm (:func:`aps_phase`): ``x[b, :, a_b::stride, c_b::stride]``.

    Shape: ``(B, C, H, W) -> (B, C, H/stride, W/stride)``; ``H`` and ``W`` must be multiples of ``stride``.
    """
    if stride == 1:
        return x
    batch, channels, h, w = x.shape
    phase = aps_phase(x, stride)
    phases = x.reshape(batch, channels, h // stride, stride, w // stride, stride)
    # Advanced indices on dims 0, 3 and 5 (not adjacent): their broadcast dim comes first -> (B, C, H/s, W/s).
    return phases[torch.arange(batch, device=x.device), :, :, phase[:, 0], :, phase[:, 1]]


def roll_to_phase(x: Tensor, phase: Tensor) -> Tensor:
    """Roll sample b by ``-phase[b]``, so that a stride-s operation that samples positions 0, s, 2s, … samples the
    polyphase component ``phase[b]`` instead. Shape: x ``(B, C, H, W)``, phase ``(B, 2)`` long -> like x."""
    return vectorised_roll(x, -phase)


class PeriodicConv2d(nn.Conv2d):
    """2-D convolution of a periodic image: odd square kernel, wrap-around padding of ``kernel_size // 2``.

    With ``stride=1`` a roll of the input by any ``(dy, dx)`` rolls the output by the same ``(dy, dx)``: the
    layer commutes with every lattice translation of the pixel grid. With stride ``s`` the same holds for
    rolls by multiples of ``s`` (the output rolls by ``(dy/s, dx/s)``).

    ``adaptive_polyphase=True`` (set by :func:`photossl.models.exact_symmetry.make_shift_invariant`) keeps the
    weights but computes the stride-1 map and keeps its polyphase component of largest norm (:func:`aps_phase`):
    any integer roll of the input then rolls the output by an integer amount. ``H``, ``W``: multiples of the stride.

    ``fourier=True`` (default): on the CPU, stride-1 layers with kernels of at least 5×5 and at least 8 input
    channels compute the same correlation in Fourier space (:func:`~photossl.models.spectral_conv.
    spectral_periodic_conv2d`; equal up to float rounding, several times faster). ``fourier = False`` always runs
    the direct convolution.

    Shape: ``(B, C_in, H, W) -> (B, C_out, ⌈H/stride⌉, ⌈W/stride⌉)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True):
        _check_kernel(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.periodic_padding = kernel_size // 2
        self.adaptive_polyphase = False
        self.fourier = True

    def _fourier_pays(self, x: Tensor) -> bool:
        return (self.fourier and not self.adaptive_polyphase and x.device.type == "cpu" and x.dim() == 4
                and x.dtype in (torch.float32, torch.float64) and self.stride == (1, 1) and self.groups == 1
                and self.dilation == (1, 1) and self.kernel_size[0] >= _FOURIER_MIN_KERNEL
                and self.in_channels >= _FOURIER_MIN_IN_CHANNELS)

    def forward(self, x: Tensor) -> Tensor:
        if self._fourier_pays(x):
            return spectral_periodic_conv2d(x, self.weight, self.bias)
        if self.adaptive_polyphase and self.stride[0] > 1:
            # Choose the phase on the stride-1 map without gradients, then convolve at the stride from that phase:
            # the same values, while backward runs at the stride (the full map is never differentiated).
            with torch.no_grad():
                full = F.conv2d(periodic_pad(x.detach(), self.periodic_padding), self.weight, self.bias)
                phase = aps_phase(full, self.stride[0])
            x = roll_to_phase(x, phase)
        return super().forward(periodic_pad(x, self.periodic_padding))

    def extra_repr(self) -> str:
        extra = ", adaptive_polyphase=True" if self.adaptive_polyphase else ""
        extra += "" if self.fourier else ", fourier=False"
        return super().extra_repr() + f", periodic_padding={self.periodic_padding}" + extra


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
