"""Several networks of one architecture, each with its own weights, computed as one network.

The members' convolutions become one grouped convolution over the members' channels (layout ``(B, M·C, H, W)``),
their linear layers one batched matrix product (layout ``(M, B, F)``) and their batch norms one batch norm over all
members' channels. Member m only ever sees its own inputs, weights and batch statistics, so each member computes what
its own network would (up to float rounding), while the per-operation overhead is paid once for all members.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from photossl.models.periodic_conv import PeriodicConv2d, periodic_pad

_CHANNEL_WISE = (nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)


def _layers(model: nn.Module) -> list[tuple[str, nn.Module, bool]] | None:
    """(state-dict prefix, module, in the encoder) of a :class:`~photossl.finetune.network.Regressor` in forward
    order, or None when its encoder or head is not a plain chain of supported layers."""
    from photossl.models import ESSLEncoder, SmallEncoder

    encoder, head = model.encoder, model.head
    if getattr(model, "output_permutation", None) is not None or not isinstance(head, nn.Sequential):
        return None
    if type(encoder) is SmallEncoder:  # fc(pool(body(x)))
        encoder_layers = [*_children("encoder.body", encoder.body), *_children("encoder.pool", encoder.pool),
                          ("encoder.fc", encoder.fc)]
    elif type(encoder) is ESSLEncoder:  # head(features(x))
        encoder_layers = [*_children("encoder.features", encoder.features), *_children("encoder.head", encoder.head)]
    else:
        return None
    layers = [(prefix, module, True) for prefix, module in encoder_layers]
    layers += [(prefix, module, False) for prefix, module in _children("head", head)]
    for _, module, _ in layers:
        if isinstance(module, PeriodicConv2d):
            if module.adaptive_polyphase:
                return None
        elif isinstance(module, nn.Conv2d):
            if module.padding_mode != "zeros" or isinstance(module.padding, str):
                return None
        elif isinstance(module, nn.BatchNorm2d):
            if module.momentum is None or not module.track_running_stats or not module.affine:
                return None
        elif isinstance(module, nn.Flatten):
            if module.start_dim != 1 or module.end_dim != -1:
                return None
        elif not isinstance(module, (nn.Linear, *_CHANNEL_WISE)):
            return None
    return layers


def _children(prefix: str, sequence: nn.Sequential) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}.{name}", module) for name, module in sequence.named_children()]


def can_stack(model: nn.Module) -> bool:
    """Whether :class:`StackedNetwork` computes networks like ``model`` (a 'small' or 'essl' encoder without
    exact symmetry, an MLP head without norms)."""
    return _layers(model) is not None


class StackedNetwork:
    """M copies of a :class:`~photossl.finetune.network.Regressor` with stacked weights (leaf tensors ``(M, ...)``).

    ``params`` / ``buffers`` map the Regressor's state-dict keys to the stacked tensors; a frozen model's encoder
    parameters do not require gradients and its encoder runs in eval mode. :meth:`forward` computes every member, or
    the members ``rows`` only (their gradients still land in the stacked tensors; their batch-norm statistics are
    written back). Shape: ``(M, B, C, N, N) -> (M, B, out_dim)``.
    """

    def __init__(self, models: list[nn.Module]):
        layers = _layers(models[0])
        if layers is None:
            raise ValueError("the model is not a chain of layers that StackedNetwork can stack")
        self.layers = layers
        self.frozen = bool(getattr(models[0], "frozen", False))
        self.keys = list(models[0].state_dict().keys())
        states = [m.state_dict() for m in models]
        names = {name for name, _ in models[0].named_parameters()}
        self.params: dict[str, Tensor] = {}
        self.buffers: dict[str, Tensor] = {}
        for key in self.keys:
            stacked = torch.stack([state[key].detach() for state in states]).clone()
            if key in names:
                self.params[key] = stacked.requires_grad_(not (self.frozen and key.startswith("encoder.")))
            else:
                self.buffers[key] = stacked

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def to(self, device: torch.device) -> StackedNetwork:
        self.params = {k: v.detach().to(device).requires_grad_(v.requires_grad) for k, v in self.params.items()}
        self.buffers = {k: v.to(device) for k, v in self.buffers.items()}
        return self

    def keep(self, rows: list[int]) -> None:
        """Drop every member but ``rows`` (in that order)."""
        index = torch.as_tensor(rows, dtype=torch.long, device=next(iter(self.params.values())).device)
        self.params = {k: v.detach().index_select(0, index).requires_grad_(v.requires_grad)
                       for k, v in self.params.items()}
        self.buffers = {k: v.index_select(0, index) for k, v in self.buffers.items()}

    def member_state(self, row: int) -> dict[str, Tensor]:
        """The state dict of member ``row`` (CPU copies), in the Regressor's keys."""
        return {k: (self.params[k] if k in self.params else self.buffers[k])[row].detach().cpu().clone()
                for k in self.keys}

    def trainable(self) -> dict[str, Tensor]:
        return {k: v for k, v in self.params.items() if v.requires_grad}

    def forward(self, x: Tensor, training: bool, rows: list[int] | None = None) -> Tensor:
        if rows is None or len(rows) == self.size and rows == list(range(self.size)):
            params, buffers, index = self.params, self.buffers, None
        else:
            index = torch.as_tensor(rows, dtype=torch.long, device=x.device)
            params = {k: v.index_select(0, index) for k, v in self.params.items()}
            buffers = {k: v.index_select(0, index) for k, v in self.buffers.items()}
        out = self._run(x, params, buffers, training)
        if index is not None and training:  # the members' batch-norm statistics moved in the copies
            for k, v in buffers.items():
                self.buffers[k].index_copy_(0, index, v)
        return out

    def _run(self, x: Tensor, params: dict, buffers: dict, training: bool) -> Tensor:
        m, b = x.shape[:2]
        h = x.transpose(0, 1).reshape(b, m * x.shape[2], *x.shape[3:])  # member channels side by side
        flat = False
        for prefix, module, in_encoder in self.layers:
            train = training and not (self.frozen and in_encoder)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not (self.frozen and in_encoder)):
                h, flat = self._layer(prefix, module, h, flat, m, params, buffers, train)
        return h

    @staticmethod
    def _layer(prefix, module, h, flat, m, params, buffers, train):
        if isinstance(module, nn.Conv2d):
            weight = params[f"{prefix}.weight"]
            bias = params.get(f"{prefix}.bias")
            weight = weight.reshape(-1, *weight.shape[2:])
            bias = None if bias is None else bias.reshape(-1)
            padding = module.padding
            if isinstance(module, PeriodicConv2d):
                h, padding = periodic_pad(h, module.periodic_padding), 0
            return F.conv2d(h, weight, bias, module.stride, padding, module.dilation, m * module.groups), flat
        if isinstance(module, nn.BatchNorm2d):
            mean, var = buffers[f"{prefix}.running_mean"], buffers[f"{prefix}.running_var"]
            h = F.batch_norm(h, mean.view(-1), var.view(-1), params[f"{prefix}.weight"].reshape(-1),
                             params[f"{prefix}.bias"].reshape(-1), train, module.momentum, module.eps)
            if train:
                buffers[f"{prefix}.num_batches_tracked"].add_(1)
            return h, flat
        if isinstance(module, nn.ReLU):
            return torch.relu(h), flat
        if isinstance(module, nn.Flatten):  # (B, M·C, H, W) -> (M, B, C·H·W)
            return h.reshape(h.shape[0], m, -1).transpose(0, 1), True
        if isinstance(module, nn.Linear):
            weight, bias = params[f"{prefix}.weight"], params.get(f"{prefix}.bias")
            if bias is None:
                return torch.bmm(h, weight.transpose(1, 2)), flat
            return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)), flat
        return module(h), flat  # pools act on each channel alone
