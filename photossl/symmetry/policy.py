"""Symmetry policies: which transformations a model should be invariant to, and which it should predict.

Transformation names:
- 'rot4': the four rotations about pixel 0.
- 'flip': the axis mirrors (reverse axis -2 / axis -1) drawn from the group they generate {identity, mirror x,
  mirror y, half turn}. E-SSL draws from {identity, mirror x, mirror y} with equal odds, a set that is not closed
  under composition; the group is used here so that the augmentation distribution is invariant.
- 'd4': all eight point operations.
- 'translate': a periodic roll by (dx, dy) uniform in 0..N−1 on both axes.
- 'half_translate': the half-cell translations (0, 0), (0, N/2), (N/2, 0), (N/2, N/2).
- 'scale': ε -> s·ε with s log-uniform in ``scale_range`` (acts on raw ε; see ``eps_normalisation``).

The E-SSL photonics setups are the presets 'essl-blob' (invariant flip + rot4, predict half_translate) and
'essl-gpm' (invariant translate + flip, predict rot4). 'equivariant-d4' (invariant translate, predict d4) leaves every
point operation to the equivariant part, for relative E-SSL and known-group CARE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from photossl.errors import PhotosslError
from photossl.symmetry.batch import ElementBatch
from photossl.symmetry.groups import FINITE_GROUPS, FiniteGroup, _draw_device, _n_draws, finite_group, repeat_chunks
from photossl.symmetry.pixel_action import grid_size

TRANSFORM_NAMES = ("rot4", "flip", "d4", "translate", "half_translate", "scale")
PREDICT_NAMES = tuple(FINITE_GROUPS)

PRESETS: dict[str, dict[str, Any]] = {
    "none": {"invariant": [], "predict": None},
    "essl-blob": {"invariant": ["flip", "rot4"], "predict": "half_translate"},
    "essl-gpm": {"invariant": ["translate", "flip"], "predict": "rot4"},
    "equivariant-d4": {"invariant": ["translate"], "predict": "d4"},
}


@dataclass
class SymmetryPolicy:
    """Invariances applied as random augmentations and a finite group whose labels a model predicts.

    Attributes:
        invariant: names from :data:`TRANSFORM_NAMES`; ``augment`` composes one random element of each per sample.
        predict: a finite group name from :data:`PREDICT_NAMES`, or None.
        scale_range: (low, high), 0 < low <= high, for 'scale'; s is drawn log-uniformly.
        eps_normalisation: (offset, width) when cells hold (ε − offset)/width (e.g. (1, 19) for the E-SSL input),
            so that 'scale' still acts on raw ε; None when cells hold raw ε.
    """

    invariant: list[str] = field(default_factory=list)
    predict: str | None = None
    scale_range: tuple[float, float] = (0.5, 2.0)
    eps_normalisation: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.invariant, str):
            self.invariant = [self.invariant]
        self.invariant = list(self.invariant)
        if isinstance(self.predict, str) and self.predict.lower() in ("none", ""):
            self.predict = None
        self.validate()
        self._groups: dict[str, FiniteGroup] = {}

    def validate(self) -> None:
        for name in self.invariant:
            if name not in TRANSFORM_NAMES:
                raise PhotosslError(
                    f"unknown invariant transformation '{name}' (allowed: {', '.join(TRANSFORM_NAMES)})"
                )
        if self.predict is not None and self.predict not in PREDICT_NAMES:
            raise PhotosslError(
                f"unknown predict group '{self.predict}' (allowed: {', '.join(PREDICT_NAMES)}, or none)"
            )
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise PhotosslError(f"scale_range must be (low, high) with 0 < low <= high, got {self.scale_range!r}")
        if self.eps_normalisation is not None and (
            len(self.eps_normalisation) != 2 or self.eps_normalisation[1] == 0
        ):
            raise PhotosslError(f"eps_normalisation must be (offset, width != 0), got {self.eps_normalisation!r}")

    def _group(self, name: str) -> FiniteGroup:
        # Built once per policy: construction checks closure exactly, and groups cache their index tables.
        if name not in self._groups:
            self._groups[name] = finite_group(name)
        return self._groups[name]

    @property
    def predict_group(self) -> FiniteGroup | None:
        return None if self.predict is None else self._group(self.predict)

    def sample_invariant(
        self,
        batch_size: int,
        size: int,
        generator: torch.Generator | None = None,
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
    ) -> ElementBatch:
        """One random element per sample (or per chunk of ``chunk_size`` consecutive samples): a uniform draw from
        each listed invariance, composed in the listed order (the first listed acts first)."""
        n = _n_draws(batch_size, chunk_size)
        draw_on = _draw_device(generator)
        elements = ElementBatch.identity(n, size, draw_on)
        for name in self.invariant:
            if name in FINITE_GROUPS:
                group = self._group(name)
                labels = group.sample(n, generator, device=draw_on)
                drawn = group.batch(labels, size)
            elif name == "translate":
                shift = torch.randint(size, (n, 2), generator=generator, device=draw_on)
                drawn = ElementBatch(ElementBatch.identity(n, size, draw_on).point, shift, None, size)
            else:  # scale
                low, high = (math.log(v) for v in self.scale_range)
                u = torch.rand(n, generator=generator, device=draw_on, dtype=torch.float64)
                scale = torch.exp(low + (high - low) * u)
                identity = ElementBatch.identity(n, size, draw_on)
                drawn = ElementBatch(identity.point, identity.shift, scale, size)
            elements = drawn @ elements
        scale = None if elements.scale is None else repeat_chunks(elements.scale, batch_size, chunk_size)
        out = ElementBatch(
            repeat_chunks(elements.point, batch_size, chunk_size),
            repeat_chunks(elements.shift, batch_size, chunk_size),
            scale,
            size,
        )
        return out.to(device) if device is not None else out

    def augment(
        self, x: torch.Tensor, generator: torch.Generator | None = None, chunk_size: int | None = None
    ) -> torch.Tensor:
        """Random invariance augmentation, per sample or shared by chunks. Shape: (B, C, N, N) -> (B, C, N, N)."""
        if not self.invariant:
            return x
        size = grid_size(x)
        elements = self.sample_invariant(x.shape[0], size, generator, chunk_size, x.device)
        return elements.apply(x, self.eps_normalisation)

    def predict_views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """All transforms of every cell by the predicted group, group-major, with their labels.

        Shape: x (B, C, N, N) -> views (G·B, C, N, N), labels (G·B,) long; views[l·B + b] = g_l·x[b].
        """
        group = self.predict_group
        if group is None:
            raise PhotosslError("this symmetry policy has no 'predict' group")
        return group.expand(x)

    def sample_predict(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """(batch_size,) random labels of the predicted group; with ``chunk_size`` one label per chunk (CARE)."""
        group = self.predict_group
        if group is None:
            raise PhotosslError("this symmetry policy has no 'predict' group")
        return group.sample(batch_size, generator, chunk_size, device)


def policy_preset(name: str) -> SymmetryPolicy:
    """A named policy: 'none', 'essl-blob', 'essl-gpm'."""
    if name not in PRESETS:
        raise PhotosslError(f"unknown symmetry preset '{name}' (allowed: {', '.join(PRESETS)})")
    return SymmetryPolicy(**PRESETS[name])


def parse_policy(config: str | dict[str, Any] | SymmetryPolicy) -> SymmetryPolicy:
    """A policy from a preset name, a mapping (``{'invariant': [...], 'predict': ...}``), or a YAML mapping string.

    A mapping may name a ``preset`` whose values the other keys override.
    """
    from photossl.config import build_config

    if isinstance(config, SymmetryPolicy):
        return config
    if isinstance(config, str):
        if config in PRESETS:
            return policy_preset(config)
        import yaml

        try:
            loaded = yaml.safe_load(config)
        except yaml.YAMLError:
            loaded = None
        if not isinstance(loaded, dict):
            raise PhotosslError(
                f"symmetry policy must be a preset ({', '.join(PRESETS)}) or a mapping, got {config!r}"
            )
        config = loaded
    values = dict(config)
    preset = values.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise PhotosslError(f"unknown symmetry preset '{preset}' (allowed: {', '.join(PRESETS)})")
        values = {**PRESETS[preset], **values}
    return build_config(SymmetryPolicy, values)
