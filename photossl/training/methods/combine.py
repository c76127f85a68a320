"""A method is a base loss with optional modifiers (:func:`~photossl.training.config.parse_method`); this module
joins their parts and fixes the order in which they run.

- ``parts``: drawing views, building heads, running networks, after-step updates: CARE, E-SSL, known-group CARE, then
  the base. The views' random draws, the heads' initial weights and the batch-norm statistics follow this order, so a
  seed gives the same run whatever else changes.
- ``terms``: summing the loss and logging its terms: the base, CARE, known-group CARE, E-SSL (floating-point sums
  depend on the order, and the log's columns follow it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import chain

from photossl.training.config import MethodSpec
from photossl.training.methods.barlow import BarlowTwins
from photossl.training.methods.byol import BYOL
from photossl.training.methods.care import CARE
from photossl.training.methods.essl import ESSL
from photossl.training.methods.gcare import KnownGroupCARE
from photossl.training.methods.moco import MoCo
from photossl.training.methods.part import Part
from photossl.training.methods.simclr import SimCLR
from photossl.training.methods.vicreg import VICReg

BASES: dict[str, Part] = {part.name: part for part in (SimCLR(), VICReg(), BarlowTwins(), BYOL(), MoCo())}
ESSL_PART, CARE_PART, GCARE_PART = ESSL(), CARE(), KnownGroupCARE()


@dataclass(frozen=True)
class Method:
    """The parts of a parsed method, in the two orders they run in (see the module docstring)."""

    spec: MethodSpec
    base: Part
    parts: tuple[Part, ...]
    terms: tuple[Part, ...]

    @property
    def columns(self) -> list[str]:
        """The loss terms a run logs after 'loss' and 'base'."""
        return list(chain.from_iterable(part.columns for part in self.terms))

    def warnings(self, config) -> list[str]:
        return list(chain.from_iterable(part.warnings(config) for part in self.parts))

    def check_batch(self, config, per_rank: int) -> None:
        for part in self.parts:
            part.check_batch(config, per_rank)

    def pair_chunk(self, pipeline) -> int | None:
        """Samples per shared draw of the two contrastive views (None: one draw per sample)."""
        return next((chunk for part in self.parts if (chunk := part.pair_chunk(pipeline)) is not None), None)


@cache
def method_of(spec: MethodSpec) -> Method:
    """The :class:`Method` of a parsed method (built once per spec)."""
    care = (CARE_PART,) if spec.care else ()
    essl = (ESSL_PART,) if spec.predict else ()
    gcare = (GCARE_PART,) if spec.known_group else ()
    base = BASES[spec.base]
    return Method(spec, base, (*care, *essl, *gcare, base), (base, *care, *gcare, *essl))
