"""Complete photonic band gaps from band frequencies sampled over the Brillouin zone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BandGap:
    """A complete gap between band ``lower_band`` and ``lower_band + 1`` (1-based band numbers)."""

    lower_band: int
    lower_edge: float  # max of the lower band
    upper_edge: float  # min of the upper band

    @property
    def width(self) -> float:
        return self.upper_edge - self.lower_edge

    @property
    def midgap(self) -> float:
        return 0.5 * (self.upper_edge + self.lower_edge)

    @property
    def gap_to_midgap(self) -> float:
        return self.width / self.midgap


def band_gaps(frequencies: np.ndarray, min_ratio: float = 0.0) -> list[BandGap]:
    """All complete gaps (upper edge > lower edge) between consecutive bands of (K, n_bands) frequencies.

    Gaps whose gap-to-midgap ratio is <= ``min_ratio`` are dropped (numerical slivers).
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    tops = frequencies.max(axis=0)[:-1]
    bottoms = frequencies.min(axis=0)[1:]
    gaps = []
    for index, (top, bottom) in enumerate(zip(tops, bottoms)):
        if bottom > top:
            gap = BandGap(index + 1, float(top), float(bottom))
            if gap.gap_to_midgap > min_ratio:
                gaps.append(gap)
    return gaps


def gap_table(frequencies: np.ndarray) -> np.ndarray:
    """Per band pair (n_bands - 1, 3): lower edge, upper edge, gap-to-midgap ratio (0 where there is no gap).

    A fixed-size summary suitable as a regression target.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    tops = frequencies.max(axis=0)[:-1]
    bottoms = frequencies.min(axis=0)[1:]
    width = np.maximum(bottoms - tops, 0.0)
    mid = 0.5 * (bottoms + tops)
    ratio = np.where(width > 0, width / np.where(mid > 0, mid, 1.0), 0.0)
    return np.stack([tops, bottoms, ratio], axis=1)
