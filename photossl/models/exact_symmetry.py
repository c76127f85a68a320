"""Encoders exactly invariant to the symmetries of the square pixel grid, by construction rather than by training.

The group is D4 (the eight point operations about pixel 0, :mod:`photossl.symmetry`) together with every periodic
roll by whole pixels; together they are all the pixel-exact symmetries of a square unit cell.

- Translations: a periodic encoder (circular padding) commutes with rolls, except where it subsamples (strided
  convolutions, max-pools), which only commute with rolls by multiples of the stride. Adaptive polyphase sampling
  (APS, Chaman & Dokmanić, CVPR 2021) replaces each subsampling by "compute at stride 1, keep the polyphase
  component of largest norm" (:func:`~photossl.models.periodic_conv.aps_phase`); every roll of the input then
  rolls every map by an integer amount, and the global pool at the end removes it. Weights are unchanged: a strided
  periodic convolution keeps its kernel, a 2× max-pool becomes a stride-1 periodic max-pool followed by APS, and
  picking component (0, 0) every time would give back the original network.
- D4: orbit averaging. f_sym(x) = (1/8) Σ_g f(g·x) over the eight point operations, computed as one batch of 8B
  cells. Since g·t·g⁻¹ is again a roll, f_sym is invariant to the whole group (rolls, rotations, mirrors and their
  products). For an output y on which the group acts by a permutation P_g (bands on a k-grid: k-points permute),
  y_sym(x) = (1/8) Σ_g P_g⁻¹ y(g·x) is exactly equivariant: y_sym(g·x) = P_g y_sym(x) (:func:`orbit_average`).

Exact up to float rounding (measured ≤ 2e-7 relative in float32 on random and on p4m-symmetric cells,
tests/models/test_exact_symmetry.py), also in training mode: batch norm sees each cell's whole orbit, and its batch
statistics do not depend on where in the batch or at which roll a cell sits. Two polyphase components of exactly
equal norm that are not identical (a measure-zero coincidence for continuous weights) would break the invariance;
identical ones (a cell with a translation symmetry) do not. Cost: 8 encoder passes per cell, plus the stride-1 maps
where the encoder subsampled: 10–17× a plain pass of the 'small' encoder on CPU, 7–9× for 'essl'
(benchmarks/exact_symmetry_cost.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from photossl.errors import PhotosslError
from photossl.models.periodic_conv import PeriodicConv2d, aps_phase, roll_to_phase
from photossl.symmetry import D4

D4_ORDER = 8

# Layers that act on each pixel alone, or (flatten, linear, 1-D batch norm) on the globally pooled vector: they
# commute with every roll. Dropout is left out: its random mask would break the invariance in training mode.
_POINTWISE = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, nn.ReLU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid,
    nn.Identity, nn.Flatten, nn.Linear,
)


class PolyphaseMaxPool2d(nn.Module):
    """Periodic ``kernel_size``×``kernel_size`` max-pool at stride 1, then its polyphase component of largest norm.

    Replaces ``nn.MaxPool2d(kernel_size)`` (window = stride) in a periodic encoder: with component (0, 0) it would
    give the same map; keeping the component of largest norm makes it commute with every integer roll (up to a roll
    of the output). The max itself is exact, so the stride-1 map is exactly roll-equivariant.

    Shape: ``(B, C, H, W) -> (B, C, H/kernel_size, W/kernel_size)``; ``H``, ``W`` multiples of ``kernel_size``.
    """

    def __init__(self, kernel_size: int):
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise PhotosslError(f"kernel_size must be a positive integer, got {kernel_size!r}")
        self.kernel_size = kernel_size

    def forward(self, x: Tensor) -> Tensor:
        if self.kernel_size == 1:
            return x
        k = self.kernel_size
        with torch.no_grad():  # the phase, from the stride-1 map; then a plain max-pool from that phase
            full = _periodic_window_max(_periodic_window_max(x.detach(), k, -2), k, -1)
            phase = aps_phase(full, k)
        return F.max_pool2d(roll_to_phase(x, phase), k)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


def _periodic_window_max(x: Tensor, k: int, dim: int) -> Tensor:
    """out[i] = max(x[i], …, x[i + k − 1]) along ``dim`` (-2 or -1), indices mod its size; no gradient.

    Windows grow 1, 2, 4, … by doubling, each step one element-wise maximum with the map shifted by the current
    width: several times faster on CPU than a stride-1 ``max_pool2d``, and exact.
    """
    size = x.shape[dim]
    out, width = x, 1
    while width < k:
        step = min(width, k - width) % size  # window width -> width + step
        if step:
            shifted = torch.empty_like(out)
            shifted.narrow(dim, 0, size - step).copy_(out.narrow(dim, step, size - step))
            shifted.narrow(dim, size - step, step).copy_(out.narrow(dim, 0, step))
            out = torch.maximum(out, shifted, out=shifted)
        width += min(width, k - width)
    return out


def _single(value, what: str, module: nn.Module) -> int:
    values = (value, value) if isinstance(value, int) else tuple(value)
    if len(values) != 2 or values[0] != values[1]:
        raise PhotosslError(f"exact translation symmetry needs square {what}s, got {module}")
    return int(values[0])


def make_shift_invariant(encoder: nn.Module) -> nn.Module:
    """Switch a periodic encoder, in place, to adaptive polyphase subsampling; returns it.

    Strided :class:`PeriodicConv2d` layers keep their weights and subsample adaptively; ``nn.MaxPool2d(k)`` becomes
    :class:`PolyphaseMaxPool2d` (no parameters, so state-dict keys do not change). Every other layer must commute
    with rolls: periodic convolutions, 1×1 convolutions, global (output size 1) average or max pools, and pointwise
    layers (batch norm, activations; flatten and linear after the global pool). Anything else, e.g. a zero-padded
    convolution, raises :class:`~photossl.errors.PhotosslError` naming it, before any change. The encoder's output
    is then exactly invariant to every integer roll of its input, for inputs whose size is a multiple of its total
    stride.
    """
    pools: list[tuple[nn.Module, str, int]] = []
    strided: list[tuple[PeriodicConv2d, bool]] = []
    for parent in encoder.modules():
        for name, module in parent.named_children():
            if isinstance(module, nn.MaxPool2d):
                kernel = _single(module.kernel_size, "kernel", module)
                if kernel != _single(module.stride, "stride", module) or \
                        _single(module.padding, "padding", module) != 0 or \
                        _single(module.dilation, "dilation", module) != 1:
                    raise PhotosslError(f"exact translation symmetry supports max-pools with window = stride, got "
                                        f"{module}")
                pools.append((parent, name, kernel))
            elif isinstance(module, PeriodicConv2d):
                if _single(module.dilation, "dilation", module) != 1:
                    raise PhotosslError(f"exact translation symmetry does not support dilated convolutions: {module}")
                strided.append((module, _single(module.stride, "stride", module) > 1))
            elif isinstance(module, nn.Conv2d):
                if not (module.kernel_size == (1, 1) and module.stride == (1, 1) and module.padding in ((0, 0), 0)):
                    raise PhotosslError(
                        f"exact translation symmetry needs periodic convolutions, got {module}: build the encoder "
                        "with circular_padding=True (the 'small' and 'essl' encoders)"
                    )
            elif isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
                if module.output_size not in (1, (1, 1)):
                    raise PhotosslError(f"exact translation symmetry needs global pools (output size 1), got {module}")
            elif not module._modules and not isinstance(module, (*_POINTWISE, PolyphaseMaxPool2d)):
                raise PhotosslError(
                    f"cannot make {type(encoder).__name__} exactly shift-invariant: layer {module} is not known to "
                    "commute with rolls (supported: the 'small' and 'essl' encoders with circular padding)"
                )
    for parent, name, kernel in pools:
        setattr(parent, name, PolyphaseMaxPool2d(kernel))
    for conv, adaptive in strided:
        conv.adaptive_polyphase = adaptive
    for module in encoder.modules():
        if isinstance(module, PeriodicConv2d):
            # Fourier-space convolutions commute with rolls only up to their rounding, which is position
            # dependent and large enough (2.6e-5 relative) to break the invariance these encoders guarantee.
            module.fourier = False
    return encoder


def orbit_average(outputs: Tensor, permutation: Tensor | None = None) -> Tensor:
    """Average over the D4 orbit, mapping each output back first: (1/8) Σ_g P_g⁻¹ outputs[g].

    ``outputs[g]`` is a network's output on the cells transformed by D4 element g (label order of
    :class:`photossl.symmetry.D4`). ``permutation`` (8, M) long, or None for invariant outputs (P_g = identity):
    the output of g·x is expected at ``(P_g y)[i] = y[permutation[g, i]]`` (:func:`photossl.symmetry.
    kpoint_permutation_table` for bands, expanded over the bands). The result is then exactly equivariant.

    Shape: outputs (8, B, M), permutation (8, M) -> (B, M).
    """
    if outputs.shape[0] != D4_ORDER:
        raise PhotosslError(f"orbit outputs must have {D4_ORDER} rows (one per D4 element), got {tuple(outputs.shape)}")
    if permutation is None:
        return outputs.mean(0)
    if outputs.dim() != 3 or permutation.shape != (D4_ORDER, outputs.shape[-1]):
        raise PhotosslError(f"permutation must have shape ({D4_ORDER}, {outputs.shape[-1]}) for outputs "
                            f"{tuple(outputs.shape)}, got {tuple(permutation.shape)}")
    inverse = permutation.to(outputs.device).argsort(1)  # (P_g⁻¹ z)[j] = z[inverse[g, j]]
    return outputs.gather(2, inverse[:, None, :].expand(outputs.shape)).mean(0)


class ExactSymmetryEncoder(nn.Module):
    """An encoder made exactly invariant to D4 and to every integer roll of the cell (see the module docstring).

    Holds the base encoder as ``.encoder`` (switched to adaptive polyphase subsampling, same parameters), so its
    state-dict keys are the base's with ``encoder.`` in front; a base encoder's state dict (no prefix) also loads.
    ``feature_dim`` is the base's. :meth:`orbit_features` gives the per-element features for equivariant heads.

    Shape: ``(B, C, N, N) -> (B, feature_dim)``; N a multiple of the base's total stride (8 for 'small' and 'essl').
    """

    exactly_symmetric = True

    def __init__(self, encoder: nn.Module):
        super().__init__()
        if getattr(encoder, "exactly_symmetric", False):
            raise PhotosslError("the encoder is already exactly symmetric")
        if not hasattr(encoder, "feature_dim"):
            raise PhotosslError(f"{type(encoder).__name__} has no feature_dim: not a photossl encoder")
        self.encoder = make_shift_invariant(encoder)
        self.feature_dim = encoder.feature_dim
        if hasattr(encoder, "in_channels"):
            self.in_channels = encoder.in_channels
        self._group = D4()
        self.register_load_state_dict_pre_hook(_accept_base_keys)

    def orbit_features(self, x: Tensor) -> Tensor:
        """Base features of every D4 image of every cell, in D4 label order: out[g, b] = encoder(g·x[b]).

        Shape: ``(B, C, N, N) -> (8, B, feature_dim)``.
        """
        views, _ = self._group.expand(x)  # group-major: views[g·B + b] = g·x[b]
        if self.training:  # one batch, so that batch norm sees every cell's whole orbit
            features = self.encoder(views)
        else:  # cells are independent: one element at a time keeps memory at the size of a plain pass
            features = torch.cat([self.encoder(chunk) for chunk in views.split(x.shape[0])])
        return features.unflatten(0, (D4_ORDER, x.shape[0]))

    def forward(self, x: Tensor) -> Tensor:
        return self.orbit_features(x).mean(0)


def _accept_base_keys(module, state_dict, prefix, *args) -> None:
    """Load a base encoder's state dict (keys without ``encoder.``) into the wrapper."""
    own = [k for k in state_dict if k.startswith(prefix)]
    if own and not any(k.startswith(prefix + "encoder.") for k in own):
        for key in own:
            state_dict[prefix + "encoder." + key[len(prefix):]] = state_dict.pop(key)
