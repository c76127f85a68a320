"""MLP heads on encoder features: projection (contrastive loss), prediction (transformation class), regression."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from photossl.errors import PhotosslError
from photossl.models._checks import positive_int, positive_ints

NORMS = ("batch", "layer", "none")


def _norm(kind: str, dim: int, *, affine: bool = True) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm1d(dim, affine=affine)]
    if kind == "layer":
        return [nn.LayerNorm(dim, elementwise_affine=affine)]
    return []


class MLP(nn.Sequential):
    """Linear layers through ``dims``, with norm then ReLU after every layer but the last.

    ``norm``: 'batch' (BatchNorm1d), 'layer' (LayerNorm) or 'none'. ``bias``: bias of every Linear.
    ``last_norm``: also normalise the output, without affine parameters (SimCLR-CIFAR projector).

    Shape: ``(B, dims[0]) -> (B, dims[-1])``.
    """

    def __init__(self, dims: Sequence[int], *, norm: str = "batch", bias: bool = True, last_norm: bool = False):
        dims = positive_ints("dims", dims, min_len=2)
        if norm not in NORMS:
            raise PhotosslError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
        if last_norm and norm == "none":
            raise PhotosslError("last_norm=True needs norm 'batch' or 'layer', got norm='none'")
        layers: list[nn.Module] = []
        for i, (din, dout) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(din, dout, bias=bias))
            if i < len(dims) - 2:
                layers += [*_norm(norm, dout), nn.ReLU(inplace=True)]
        if last_norm:
            layers += _norm(norm, dims[-1], affine=False)
        super().__init__(*layers)
        self.dims = dims
        self.in_dim = dims[0]
        self.out_dim = dims[-1]


class ProjectionHead(MLP):
    """Projector between encoder and contrastive loss: ``Linear → norm → ReLU → … → Linear``.

    E-SSL photonics: ``ProjectionHead((1024, 512, 512, 256))`` (the default).
    SimCLR / E-SSL CIFAR: ``ProjectionHead((512, 2048, 2048), bias=False, last_norm=True)``.

    Shape: ``(B, dims[0]) -> (B, dims[-1])``.
    """

    def __init__(
        self,
        dims: Sequence[int] = (1024, 512, 512, 256),
        *,
        norm: str = "batch",
        bias: bool = True,
        last_norm: bool = False,
    ):
        super().__init__(dims, norm=norm, bias=bias, last_norm=last_norm)


class PredictionHead(MLP):
    """Classifier of the applied transformation (E-SSL's equivariance task); outputs logits.

    E-SSL photonics: ``PredictionHead(1024, 4)`` = 1024→512→BN→ReLU→512→BN→ReLU→4 (the default).
    E-SSL CIFAR: ``PredictionHead(512, 4, hidden_dims=(2048, 2048), norm="layer")``.

    Shape: ``(B, in_dim) -> (B, n_classes)``.
    """

    def __init__(
        self,
        in_dim: int = 1024,
        n_classes: int = 4,
        *,
        hidden_dims: Sequence[int] = (512, 512),
        norm: str = "batch",
    ):
        positive_int("in_dim", in_dim)
        positive_int("n_classes", n_classes)
        hidden_dims = positive_ints("hidden_dims", hidden_dims)
        super().__init__((in_dim, *hidden_dims, n_classes), norm=norm)
        self.n_classes = n_classes


class RegressionHead(MLP):
    """Fine-tuning regressor (e.g. DOS on 400 frequencies): ``Linear → ReLU → … → Linear``, no norm by default.

    E-SSL photonics: ``RegressionHead(1024, 400)`` = 1024→1024→1024→512→400 with ReLU (the default).
    ``hidden_dims=()`` or :meth:`linear_probe` gives a single Linear layer.

    Shape: ``(B, in_dim) -> (B, out_dim)``.
    """

    def __init__(
        self,
        in_dim: int = 1024,
        out_dim: int = 400,
        *,
        hidden_dims: Sequence[int] = (1024, 1024, 512),
        norm: str = "none",
    ):
        positive_int("in_dim", in_dim)
        positive_int("out_dim", out_dim)
        hidden_dims = positive_ints("hidden_dims", hidden_dims)
        super().__init__((in_dim, *hidden_dims, out_dim), norm=norm)

    @classmethod
    def linear_probe(cls, in_dim: int, out_dim: int) -> "RegressionHead":
        """A single Linear layer ``in_dim → out_dim``."""
        return cls(in_dim, out_dim, hidden_dims=())
