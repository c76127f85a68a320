"""Shared references for the encoder tests."""

from __future__ import annotations

import pytest
import torch


def _circular_correlation_loop(x, weight, bias):
    """Reference: out[y, x] = Σ_(dy, dx) w[dy, dx] · in[y + dy − p, x + dx − p], indices taken mod the size."""
    k = weight.shape[-1]
    p = k // 2
    out = bias.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[-2:]).clone()
    for dy in range(k):
        for dx in range(k):
            shifted = torch.roll(x, shifts=(p - dy, p - dx), dims=(-2, -1))
            out = out + torch.einsum("oc,bchw->bohw", weight[:, :, dy, dx], shifted)
    return out


@pytest.fixture
def circular_correlation():
    """``circular_correlation(x, weight, bias)``: periodic cross-correlation by an explicit loop over the taps."""
    return _circular_correlation_loop
