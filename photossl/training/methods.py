"""A pretraining method: encoder, projector and optional prediction head, and the objective that combines
a base loss (SimCLR's NT-Xent, VICReg, Barlow Twins, BYOL, MoCo v2) with E-SSL's prediction cross-entropy and CARE's
term.

``loss = base + lambda_predict * CE(head(encoder(g·x)), g) + lambda_care * L_equi(projector embeddings)``

- E-SSL (Dangovski et al. 2022): the head sits on the encoder output, not on the projector. Relative E-SSL's head
  reads the encoder features of a pair (x, g·x), concatenated, and is scored on the coset of g under the stabiliser
  of x (:func:`photossl.losses.coset_prediction_loss`), so it has an answer on cells without an orientation.
- Known-group CARE: ``L_equi = E ‖ẑ(g·x) − ρ(g) ẑ(x)‖²`` with ρ fixed (:mod:`photossl.symmetry.representations`),
  weighted by ``lambda_care``.
- CARE (Gupta et al. 2023): ``L_equi`` acts on the projector output, L2-normalised for the Euclidean form. The
  Minkowski form needs points of the hyperboloid ``<u, u>_J = -1``: the projector output is taken as the spatial
  part and lifted, ``u = (sqrt(1 + |z|^2), z)``. ``lambda_care`` is in :mod:`photossl.losses.care_loss`'s
  normalisation, ``2 (n - 1)`` times the CARE authors' weight.
- BYOL (Grill et al. 2020) and MoCo v2 (He et al. 2020, Chen et al. 2020) add a target encoder and projector, copies
  of the online ones moved by :meth:`PretrainModel.after_step` after every optimiser step
  (:mod:`photossl.training.momentum`); they get no gradient. BYOL: an MLP predictor on the online projector output,
  :func:`photossl.losses.byol_loss` against the target projections of the other view. MoCo: the online projector
  output is the query, the target's the key, and the loss is symmetrised,
  ``(moco_loss(q1, k2, queue) + moco_loss(q2, k1, queue)) / 2``; then the keys of view 1 and of view 2 are
  enqueued, in that order (:class:`~photossl.training.momentum.KeyQueue`). E-SSL's head and CARE's terms act on the
  online network.
- Under data parallelism NT-Xent takes its negatives from every rank; VICReg and Barlow Twins see the embeddings of
  every rank (their batch statistics are global), with a gradient that reaches each rank's own rows. MoCo gathers the
  keys of every rank before enqueueing them, so every rank holds the same queue; BYOL's loss is per sample. BatchNorm
  statistics stay per rank (MoCo's shuffling BN is not done; ``sync_batchnorm`` makes them global).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from photossl import distributed
from photossl.losses import (
    barlow_twins_loss,
    byol_loss,
    coset_prediction_loss,
    known_group_care_loss,
    moco_loss,
    nt_xent_loss,
    paired_care_equivariance_loss,
    transform_prediction_loss,
    vicreg_loss,
)
from photossl.training.config import DEFAULT_EMA_MOMENTUM, MOMENTUM_BASES, MethodSpec, PretrainConfig
from photossl.training.momentum import KeyQueue, cosine_momentum, ema_update
from photossl.training.views import Views


@dataclass(frozen=True)
class Objective:
    """Hyper-parameters of the combined loss (see the module docstring)."""

    spec: MethodSpec
    temperature: float = 0.1
    lambda_predict: float = 5.0
    lambda_care: float = 0.9
    care_chunk: int = 16
    care_pairing: str = "views"
    care_form: str = "euclidean"
    vicreg_weights: tuple[float, float, float] = (25.0, 25.0, 1.0)
    barlow_lambda: float = 0.005
    ema_momentum: float | None = None  # None: the base's default (DEFAULT_EMA_MOMENTUM)
    gather_distributed: bool = True

    @property
    def base_momentum(self) -> float:
        """BYOL's τ_base or MoCo's constant momentum."""
        return self.ema_momentum if self.ema_momentum is not None else DEFAULT_EMA_MOMENTUM[self.spec.base]


def hyperboloid_lift(z: torch.Tensor) -> torch.Tensor:
    """Points of the hyperboloid ``-t^2 + |z|^2 = -1`` with spatial part z. Shape: (B, D) -> (B, D + 1)."""
    return torch.cat([torch.sqrt(1.0 + z.pow(2).sum(dim=1, keepdim=True)), z], dim=1)


def base_loss(z1: torch.Tensor, z2: torch.Tensor, objective: Objective) -> dict[str, torch.Tensor]:
    """The base loss and its logged terms. Shape: z1, z2 (B, D) -> dict of scalars with key 'base'."""
    name = objective.spec.base
    if name == "simclr":
        return {"base": nt_xent_loss(z1, z2, objective.temperature, objective.gather_distributed)}
    if objective.gather_distributed:
        z1, z2 = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
    if name == "vicreg":
        out = vicreg_loss(z1, z2, *objective.vicreg_weights)
        return {"base": out.loss, "invariance": out.invariance, "variance": out.variance,
                "covariance": out.covariance}
    if name == "barlow":
        return {"base": barlow_twins_loss(z1, z2, objective.barlow_lambda)}
    raise ValueError(f"base loss '{name}' needs the target networks of a PretrainModel")


def _full_precision(t: torch.Tensor) -> torch.Tensor:
    # Under autocast, heads emit float16/bfloat16; the losses' exponentials and squares want float32.
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class PretrainModel(nn.Module):
    """Encoder, projector, optional prediction head, and the objective; ``forward`` returns the loss terms.

    ``forward(views)`` -> dict of scalars: 'loss' (to differentiate), 'base', and when present 'predict_ce',
    'predict_acc', 'care', plus VICReg's terms. Shapes: see :class:`~photossl.training.views.Views`.

    BYOL and MoCo: ``target_encoder`` and ``target_projector`` are copies of the online modules made here (same
    initial weights), without gradients; call :meth:`after_step` after every optimiser step. BYOL needs
    ``byol_predictor`` (projector output -> projector output), MoCo a ``queue``, which ``forward`` fills in training
    mode once the loss is computed. All of them are part of the state dict.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module | None,
                 objective: Objective, representation: torch.Tensor | None = None, *,
                 byol_predictor: nn.Module | None = None, queue: KeyQueue | None = None) -> None:
        super().__init__()
        base = objective.spec.base
        if objective.spec.predict and predictor is None:
            raise ValueError("an E-SSL method needs a prediction head")
        if objective.spec.known_group and representation is None:
            raise ValueError("known-group CARE needs the representation matrices (G, D, D)")
        if base == "byol" and byol_predictor is None:
            raise ValueError("BYOL needs its predictor MLP (byol_predictor)")
        if base == "moco" and queue is None:
            raise ValueError("MoCo needs a queue of negative keys (queue)")
        self.encoder, self.projector, self.predictor = encoder, projector, predictor
        self.objective = objective
        # Not a parameter and not saved: it is rebuilt from the config.
        self.register_buffer("representation", representation, persistent=False)
        self.byol_predictor = byol_predictor if base == "byol" else None
        self.target_encoder = self.target_projector = None
        if base in MOMENTUM_BASES:
            self.target_encoder, self.target_projector = copy.deepcopy(encoder), copy.deepcopy(projector)
            for module in (self.target_encoder, self.target_projector):
                module.requires_grad_(False)
        self.queue = queue if base == "moco" else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Projector output, in at least float32 (losses are computed in full precision). (B, C, H, W) -> (B, D)."""
        return _full_precision(self.projector(self.encoder(x)))

    def target_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Target projector output, without gradient, in at least float32. (B, C, H, W) -> (B, D)."""
        with torch.no_grad():
            return _full_precision(self.target_projector(self.target_encoder(x)))

    @torch.no_grad()
    def after_step(self, step: int = 0, total_steps: int | None = None) -> dict[str, float]:
        """Move the target networks towards the online ones after optimiser step ``step`` (0-based) of
        ``total_steps``; returns the values to log, ``{'momentum': τ}``, or nothing for bases without targets.

        BYOL's τ follows :func:`~photossl.training.momentum.cosine_momentum` (its base value when ``total_steps``
        is None); MoCo's is constant.
        """
        if self.target_encoder is None:
            return {}
        tau = self.objective.base_momentum
        if self.objective.spec.base == "byol" and total_steps is not None:
            tau = cosine_momentum(step, total_steps, tau)
        ema_update(self.target_encoder, self.encoder, tau)
        ema_update(self.target_projector, self.projector, tau)
        return {"momentum": tau}

    def _momentum_pairs(self, views: Views, z1: torch.Tensor, z2: torch.Tensor):
        """The online side (BYOL's predictions or MoCo's queries) and the target side of both views."""
        k1, k2 = self.target_embed(views.view1), self.target_embed(views.view2)
        if self.byol_predictor is None:
            return z1, z2, k1, k2
        return _full_precision(self.byol_predictor(z1)), _full_precision(self.byol_predictor(z2)), k1, k2

    def _momentum_loss(self, q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor,
                       k2: torch.Tensor) -> dict[str, torch.Tensor]:
        obj = self.objective
        if obj.spec.base == "byol":
            return {"base": byol_loss(q1, q2, k1, k2)}
        queue = self.queue.keys
        return {"base": 0.5 * (moco_loss(q1, k2, queue, obj.temperature) + moco_loss(q2, k1, queue, obj.temperature))}

    @torch.no_grad()
    def _enqueue(self, k1: torch.Tensor, k2: torch.Tensor) -> None:
        if self.objective.gather_distributed:  # every rank enqueues the keys of the whole batch, in rank order
            k1, k2 = distributed.gather_with_grad(k1), distributed.gather_with_grad(k2)
        self.queue.push(nn.functional.normalize(torch.cat([k1, k2]), dim=1))

    def _prediction_logits(self, views: Views, h1: torch.Tensor, h_pred: torch.Tensor) -> torch.Tensor:
        if views.relative_anchor is None:
            return _full_precision(self.predictor(h_pred))
        if views.relative_anchor == "view1":
            anchor = h1
        else:
            b = views.view1.shape[0]
            anchor = h_pred[:b].repeat(h_pred.shape[0] // b, 1)
        return _full_precision(self.predictor(torch.cat([anchor, h_pred], dim=1)))

    def _known_group_pairs(self, views: Views, z1: torch.Tensor, h_pred: torch.Tensor | None):
        if views.equivariant_views is not None:
            return self.embed(views.equivariant_views), z1, views.equivariant_labels
        z_all = _full_precision(self.projector(h_pred))
        b = views.view1.shape[0]
        return z_all, z_all[:b].repeat(z_all.shape[0] // b, 1), views.predict_labels

    def forward(self, views: Views) -> dict[str, torch.Tensor]:
        obj = self.objective
        h1 = self.encoder(views.view1)
        z1, z2 = _full_precision(self.projector(h1)), self.embed(views.view2)
        care = clean = logits = known = None
        if obj.spec.care:
            care = (z1, z2) if views.care1 is None else (self.embed(views.care1), self.embed(views.care2))
            clean = None if views.clean is None else self.embed(views.clean)
        h_pred = None
        if views.predict_views is not None:
            h_pred = self.encoder(views.predict_views)
        if obj.spec.predict:
            logits = self._prediction_logits(views, h1, h_pred)
        if obj.spec.known_group:
            known = self._known_group_pairs(views, z1, h_pred)
        pairs = self._momentum_pairs(views, z1, z2) if obj.spec.base in MOMENTUM_BASES else None
        # Networks may run under autocast; the losses (exponentials of similarities / τ, squared Gram
        # differences) are computed in full precision.
        with torch.autocast(z1.device.type, enabled=False):
            terms = base_loss(z1, z2, obj) if pairs is None else self._momentum_loss(*pairs)
            loss = terms["base"]
            if care is not None:
                c1, c2 = care
                if obj.care_form == "minkowski":
                    c1, c2 = hyperboloid_lift(c1), hyperboloid_lift(c2)
                    clean = None if clean is None else hyperboloid_lift(clean)
                terms["care"] = paired_care_equivariance_loss(c1, c2, obj.care_chunk, obj.care_pairing, clean,
                                                              obj.care_form)
                loss = loss + obj.lambda_care * terms["care"]
            if known is not None:
                z_g, z_0, labels = known
                terms["gcare"] = known_group_care_loss(z_g, z_0, self.representation[labels.to(z_g.device)])
                loss = loss + obj.lambda_care * terms["gcare"]
            if logits is not None:
                if views.relative_anchor is None:
                    out = transform_prediction_loss(logits, views.predict_labels)
                else:
                    out = coset_prediction_loss(logits, views.predict_correct.to(logits.device))
                terms["predict_ce"], terms["predict_acc"] = out.loss, out.accuracy
                loss = loss + obj.lambda_predict * out.loss
        terms["loss"] = loss
        if self.queue is not None and self.training:  # after the loss: this batch's keys are not its negatives
            self._enqueue(pairs[2], pairs[3])
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


# Projector hidden+output sizes and prediction-head hidden sizes per encoder (RECIPES §2 and §3 for essl/resnet18).
_PROJECTOR_DIMS = {"essl": (512, 512, 256), "small": (256, 128), "digits": (128, 64), "resnet18": (2048, 2048)}
_PREDICTOR_DIMS = {"essl": (512, 512), "small": (256, 256), "digits": (128, 128), "resnet18": (2048, 2048)}
# BYOL's and MoCo v2's own projectors (hidden, output) on the ResNet-18, in place of SimCLR's 2048-d output (which
# would make MoCo's queue 16 times larger); other encoders keep _PROJECTOR_DIMS.
_MOMENTUM_PROJECTOR_DIMS = {"byol": (4096, 256), "moco": (2048, 128)}


def build_encoder_from_config(config: PretrainConfig, in_channels: int) -> nn.Module:
    """The encoder a (resolved) config names, for inputs with ``in_channels`` channels."""
    from photossl.models import build_encoder

    kwargs: dict = {"in_channels": in_channels}
    if config.encoder in ("essl", "small"):
        kwargs["circular_padding"] = config.circular_padding
    return build_encoder(config.encoder, exact_symmetry=config.exact_symmetry, **kwargs)


def build_model(config: PretrainConfig, in_channels: int) -> PretrainModel:
    """Encoder, heads and objective of a config whose defaults are resolved (:func:`resolve_defaults`).

    BYOL's predictor is ``projector output -> projector's first hidden width -> projector output`` (BYOL: 256 ->
    4096 -> 256); MoCo's queue holds ``moco_queue_size`` keys of the projector's output size.
    """
    from photossl.models import PredictionHead, ProjectionHead

    encoder = build_encoder_from_config(config, in_channels)
    feature_dim = encoder.feature_dim
    base = config.spec.base
    own_head = config.encoder == "resnet18" and config.projector_dims is None and base in MOMENTUM_BASES
    dims = tuple(config.projector_dims or (_MOMENTUM_PROJECTOR_DIMS[base] if own_head else
                                           _PROJECTOR_DIMS.get(config.encoder, (feature_dim, 128))))
    if config.encoder == "resnet18" and config.projector_dims is None and not own_head:
        projector = ProjectionHead((feature_dim, *dims), bias=False, last_norm=True)
    else:
        projector = ProjectionHead((feature_dim, *dims))
    predictor = representation = None
    group = predicted_group(config) if config.spec.uses_predict_group else None
    if config.spec.predict:
        hidden = tuple(config.predictor_dims or _PREDICTOR_DIMS.get(config.encoder, (feature_dim, feature_dim)))
        in_dim = 2 * feature_dim if config.spec.relative else feature_dim
        predictor = PredictionHead(in_dim, group.order, hidden_dims=hidden, norm=config.predictor_norm)
    if config.spec.known_group:
        from photossl.symmetry.representations import block_representation

        representation = block_representation(group, dims[-1]).matrices.float()
    byol_predictor = ProjectionHead((dims[-1], dims[0], dims[-1])) if base == "byol" else None
    queue = KeyQueue(config.moco_queue_size, dims[-1]) if base == "moco" else None
    return PretrainModel(encoder, projector, predictor, objective_from_config(config), representation,
                         byol_predictor=byol_predictor, queue=queue)


def predicted_group(config: PretrainConfig):
    """The :class:`~photossl.symmetry.FiniteGroup` a method predicts or represents: the policy's on the photonics
    track, the four image rotations on the vision track."""
    if config.track == "photonics":
        return config.symmetry_policy().predict_group
    from photossl.symmetry import Rot4

    return Rot4()
