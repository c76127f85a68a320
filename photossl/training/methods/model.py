"""The network a method trains: encoder, projector and the heads its parts add, and a ``forward`` that runs the parts
and sums their loss terms.

``loss = base + lambda_care · L_care + lambda_care · L_gcare + lambda_predict · CE`` (the terms a method has; see
each part's module). Networks may run under autocast; every loss is computed in full precision. Under data
parallelism NT-Xent takes its negatives from every rank, VICReg and Barlow Twins see every rank's embeddings, MoCo
gathers every rank's keys; BatchNorm statistics stay per rank (MoCo's shuffling BN is not done; ``sync_batchnorm``
makes them global).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from photossl.models import ProjectionHead, build_encoder
from photossl.training.config import MethodSpec, PretrainConfig
from photossl.training.methods.combine import method_of
from photossl.training.methods.part import Pass, full_precision
from photossl.training.momentum import KeyQueue

# Projector hidden+output sizes per encoder (RECIPES §2 and §3 for essl/resnet18); a base may bring its own for the
# ResNet-18 (``resnet18_projector``: BYOL's and MoCo's).
PROJECTOR_DIMS = {"essl": (512, 512, 256), "small": (256, 128), "digits": (128, 64), "resnet18": (2048, 2048)}


@dataclass(frozen=True)
class Objective:
    """Hyper-parameters of the combined loss; ``ema_momentum`` None means the base's default."""

    spec: MethodSpec
    temperature: float = 0.1
    lambda_predict: float = 5.0
    lambda_care: float = 0.9
    care_chunk: int = 16
    care_pairing: str = "views"
    care_form: str = "euclidean"
    vicreg_weights: tuple[float, float, float] = (25.0, 25.0, 1.0)
    barlow_lambda: float = 0.005
    ema_momentum: float | None = None
    gather_distributed: bool = True


class PretrainModel(nn.Module):
    """Encoder, projector, the parts' heads, and the objective; ``forward(views)`` returns the loss terms.

    ``forward(views)`` -> dict of scalars: 'loss' (to differentiate), 'base', and the columns of the method's parts
    ('predict_ce', 'predict_acc', 'care', 'gcare', VICReg's terms). Shapes: see
    :class:`~photossl.training.views.Views`.

    BYOL and MoCo: ``target_encoder`` and ``target_projector`` are copies of the online modules made here (same
    initial weights), without gradients; call :meth:`after_step` after every optimiser step. BYOL needs
    ``byol_predictor``, MoCo a ``queue``, which ``forward`` fills in training mode once the loss is computed. All of
    them are part of the state dict; ``representation`` (known-group CARE's ρ) is not: it is rebuilt from the config.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module | None,
                 objective: Objective, representation: torch.Tensor | None = None, *,
                 byol_predictor: nn.Module | None = None, queue: KeyQueue | None = None) -> None:
        super().__init__()
        self.method = method_of(objective.spec)
        self.encoder, self.projector, self.predictor = encoder, projector, predictor
        self.objective = objective
        self.register_buffer("representation", representation, persistent=False)
        self.byol_predictor = byol_predictor
        self.target_encoder = self.target_projector = None
        if self.method.base.target_network:
            self.target_encoder, self.target_projector = copy.deepcopy(encoder), copy.deepcopy(projector)
            for module in (self.target_encoder, self.target_projector):
                module.requires_grad_(False)
        self.queue = queue
        for part in self.method.parts:
            part.check_model(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Projector output, in at least float32 (losses are computed in full precision). (B, C, H, W) -> (B, D)."""
        return full_precision(self.projector(self.encoder(x)))

    def target_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Target projector output, without gradient, in at least float32. (B, C, H, W) -> (B, D)."""
        with torch.no_grad():
            return full_precision(self.target_projector(self.target_encoder(x)))

    @torch.no_grad()
    def after_step(self, step: int = 0, total_steps: int | None = None) -> dict[str, float]:
        """Run the parts' updates after optimiser step ``step`` (0-based) of ``total_steps`` (BYOL's and MoCo's
        target networks follow the online ones); returns the values to log, e.g. ``{'momentum': τ}``."""
        logged: dict[str, float] = {}
        for part in self.method.parts:
            logged.update(part.after_step(self, step, total_steps))
        return logged

    def forward(self, views) -> dict[str, torch.Tensor]:
        h1 = self.encoder(views.view1)
        out = Pass(h1, full_precision(self.projector(h1)), self.embed(views.view2))
        for part in self.method.parts:
            part.forward(self, views, out)
        terms: dict[str, torch.Tensor] = {}
        loss = None
        with torch.autocast(out.z1.device.type, enabled=False):
            for part in self.method.terms:
                logged, added = part.loss(self, views, out)
                terms.update(logged)
                loss = added if loss is None else loss + added
        terms["loss"] = loss
        for part in self.method.parts:
            part.after_loss(self, out)
        return terms


def objective_from_config(config: PretrainConfig) -> Objective:
    """The :class:`Objective` of a config whose defaults are resolved."""
    return Objective(
        spec=config.spec,
        temperature=config.temperature,
        lambda_predict=config.lambda_predict,
        lambda_care=config.lambda_care,
        care_chunk=config.care_chunk,
        care_pairing=config.care_pairing,
        care_form=config.care_form,
        vicreg_weights=tuple(config.vicreg_weights),
        barlow_lambda=config.barlow_lambda,
        ema_momentum=config.ema_momentum,
    )


def build_encoder_from_config(config: PretrainConfig, in_channels: int) -> nn.Module:
    """The encoder a (resolved) config names, for inputs with ``in_channels`` channels."""
    kwargs: dict = {"in_channels": in_channels}
    if config.encoder in ("essl", "small"):
        kwargs["circular_padding"] = config.circular_padding
    return build_encoder(config.encoder, exact_symmetry=config.exact_symmetry, **kwargs)


def build_projector(config: PretrainConfig, base, feature_dim: int) -> tuple[tuple[int, ...], nn.Module]:
    """(hidden and output sizes, projector) of a resolved config with base part ``base``. SimCLR's ResNet-18 projector
    has no bias and a final batch norm (RECIPES §3)."""
    own = base.resnet18_projector if config.encoder == "resnet18" and config.projector_dims is None else None
    dims = tuple(config.projector_dims or own or PROJECTOR_DIMS.get(config.encoder, (feature_dim, 128)))
    if config.encoder == "resnet18" and config.projector_dims is None and own is None:
        return dims, ProjectionHead((feature_dim, *dims), bias=False, last_norm=True)
    return dims, ProjectionHead((feature_dim, *dims))


def build_model(config: PretrainConfig, in_channels: int) -> PretrainModel:
    """Encoder, projector, the parts' heads and the objective of a config whose defaults are resolved
    (:func:`~photossl.training.config.resolve_defaults`)."""
    encoder = build_encoder_from_config(config, in_channels)
    method = method_of(config.spec)
    dims, projector = build_projector(config, method.base, encoder.feature_dim)
    heads: dict = {}
    for part in method.parts:
        heads.update(part.heads(config, encoder.feature_dim, dims))
    return PretrainModel(encoder, projector, heads.pop("predictor", None), objective_from_config(config),
                         heads.pop("representation", None), **heads)
