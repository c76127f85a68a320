"""The finite group that E-SSL's head predicts and known-group CARE represents."""

from __future__ import annotations

from photossl.symmetry import Rot4


def predicted_group(config):
    """The :class:`~photossl.symmetry.FiniteGroup` of a config: its symmetry policy's 'predict' group on the photonics
    track, the four image rotations on the vision track."""
    if config.track == "photonics":
        return config.symmetry_policy().predict_group
    return Rot4()
