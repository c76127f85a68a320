"""CARE's equivariance loss: an augmentation shared by a chunk of inputs should preserve their pairwise inner products.

Gupta et al., "Structuring Representation Geometry with Rotationally Equivariant Contrastive Learning" (CARE,
arXiv:2306.13924): ``L_equi = E_a E_{x,x'} [f(a x)^T f(a x') - f(x)^T f(x')]^2``. The loss vanishes when one
orthogonal map ``R_a`` relates the two embeddings of every input in a chunk (``f(a x) = R_a f(x)``); with a general
symmetric bilinear form ``<u, v>_J = u^T J v`` it vanishes for the form's isometries (``R^T J R = J``), e.g. the
Lorentz group for the Minkowski form.

Normalisation. For chunks ``Z_a = (u_1..u_n)``, ``Z_b = (v_1..v_n)`` the value is the mean over chunks of the mean
over the ``n (n - 1)`` ordered pairs ``i != j`` of ``(<u_i, u_j> - <v_i, v_j>)^2``, an estimate of the expectation
above that does not grow with the chunk size n. The authors' code computes, per chunk,
``2 * mean_rows || offdiag(Z_a Z_a^T) - offdiag(Z_b Z_b^T) ||^2``, which is ``2 (n - 1)`` times this value: a weight
``lambda_ref`` tuned with their code corresponds to ``lambda = 2 (n - 1) lambda_ref`` here (e.g. 0.03 with n = 16
becomes 0.9).

Pairings (see :func:`paired_care_equivariance_loss`): ``"views"`` follows the authors' code and compares two
augmented views ``f(a_1 x)`` and ``f(a_2 x)``, one pair ``(a_1, a_2)`` shared by each chunk; ``"clean"`` follows
the paper's formula and compares an augmented view ``f(a x)`` with the clean embedding ``f(x)``.
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from photossl.errors import PhotosslError
from photossl.losses._checks import check_choice, check_pair

PAIRINGS = ("views", "clean")
MINKOWSKI_SIGNATURES = ("mostly_plus", "mostly_minus")
FORM_NAMES = ("euclidean", "minkowski")

Form = Union[torch.Tensor, str, None]


def minkowski_form(
    dim: int, signature: str = "mostly_plus", *, dtype: torch.dtype | None = None, device=None
) -> torch.Tensor:
    """Minkowski metric on R^dim with coordinate 0 as time.

    ``"mostly_plus"`` gives ``diag(-1, 1, ..., 1)`` (then points of the hyperboloid model satisfy ``<u, u> = -1``);
    ``"mostly_minus"`` gives ``diag(1, -1, ..., -1)``. The two differ by a sign, which leaves
    :func:`care_equivariance_loss` unchanged since it squares differences of inner products.

    Shape:
        returns: (dim, dim).
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise PhotosslError(f"dim must be an integer >= 2 for a Minkowski form, got {dim!r}")
    check_choice("signature", signature, MINKOWSKI_SIGNATURES)
    diagonal = torch.ones(dim, dtype=dtype, device=device)
    diagonal[0] = -1.0
    if signature == "mostly_minus":
        diagonal = -diagonal
    return torch.diag(diagonal)


def check_chunk_size(chunk_size: int) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 2:
        raise PhotosslError(f"chunk_size must be an integer >= 2 (pairs i != j are needed), got {chunk_size!r}")


def check_form_matrix(form: torch.Tensor, dim: int | None = None) -> None:
    if form.dim() != 2 or form.shape[0] != form.shape[1]:
        raise PhotosslError(f"form must be a square (D, D) matrix, got shape {tuple(form.shape)}")
    if dim is not None and form.shape[0] != dim:
        raise PhotosslError(f"form must be ({dim}, {dim}) to match the embedding dimension, got {tuple(form.shape)}")
    if not torch.allclose(form, form.T):
        raise PhotosslError("form must be a symmetric matrix")


def check_form_spec(form: Form) -> None:
    if isinstance(form, str):
        check_choice("form", form, FORM_NAMES)
    elif form is not None and not isinstance(form, torch.Tensor):
        raise PhotosslError(f"form must be 'euclidean', 'minkowski', None or a (D, D) tensor, got {form!r}")


def store_form(module: nn.Module, form: Form) -> None:
    """Check ``form`` and keep it on ``module`` as ``module.form``: a tensor as a buffer (it moves with the module),
    a name as it is (None means 'euclidean')."""
    check_form_spec(form)
    if isinstance(form, torch.Tensor):
        check_form_matrix(form)
        module.register_buffer("form", form.detach().clone())
    else:
        module.form = "euclidean" if form is None else form


def _resolve_form(form: Form, like: torch.Tensor) -> torch.Tensor | None:
    """The (D, D) matrix of ``form`` on ``like``'s device and dtype, or None for the Euclidean dot product."""
    check_form_spec(form)
    if form is None or (isinstance(form, str) and form == "euclidean"):
        return None
    if isinstance(form, str):
        return minkowski_form(like.shape[1], dtype=like.dtype, device=like.device)
    check_form_matrix(form, like.shape[1])
    return form.to(dtype=like.dtype, device=like.device)


def _chunk_grams(z: torch.Tensor, chunk_size: int, form: torch.Tensor | None) -> torch.Tensor:
    chunks = z.reshape(-1, chunk_size, z.shape[1])  # (B / n, n, D)
    left = chunks if form is None else chunks @ form
    return left @ chunks.transpose(1, 2)  # (B / n, n, n)


def care_equivariance_loss(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    chunk_size: int,
    form: Form = None,
    normalize: bool | None = None,
) -> torch.Tensor:
    """CARE equivariance loss between two embeddings of the same inputs (module docstring: paper and normalisation).

    Rows ``[c n, (c + 1) n)`` form chunk c; within a chunk, ``z_a`` rows must share one augmentation (and so must
    ``z_b`` rows). Returns ``mean_c mean_{i != j} (<u_i, u_j>_J - <v_i, v_j>_J)^2`` with ``u = z_a``, ``v = z_b``
    rows of chunk c; symmetric in ``(z_a, z_b)``.

    form: ``None`` or ``"euclidean"`` (dot product), ``"minkowski"`` (:func:`minkowski_form`, mostly plus), or a
    symmetric (D, D) tensor J.
    normalize: L2-normalise rows onto the unit sphere first. Default (None): True for the Euclidean form, False
    otherwise, because the sphere is not preserved by the isometries of other forms (a Lorentz boost changes the
    Euclidean norm); with a non-Euclidean form the embeddings are used as given, so place them on the geometry you
    want (e.g. the hyperboloid ``<u, u>_J = -1``) before calling.

    Shape:
        z_a, z_b: (B, D), B divisible by ``chunk_size`` (n >= 2).
        returns: scalar.
    """
    check_chunk_size(chunk_size)
    check_pair(z_a, z_b, names=("z_a", "z_b"))
    if z_a.shape[0] % chunk_size != 0:
        raise PhotosslError(f"batch size {z_a.shape[0]} is not divisible by chunk_size {chunk_size}")
    matrix = _resolve_form(form, z_a)
    if normalize is None:
        normalize = matrix is None
    if normalize:
        z_a, z_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    diff = _chunk_grams(z_a, chunk_size, matrix) - _chunk_grams(z_b, chunk_size, matrix)
    off_diagonal = ~torch.eye(chunk_size, dtype=torch.bool, device=diff.device)
    # Every chunk has n (n - 1) off-diagonal pairs, so the mean over all of them is the mean over chunks.
    return diff.pow(2).masked_fill(~off_diagonal, 0.0).sum() / (diff.shape[0] * chunk_size * (chunk_size - 1))


def paired_care_equivariance_loss(
    z1: torch.Tensor,
    z2: torch.Tensor | None,
    chunk_size: int,
    pairing: str = "views",
    z_clean: torch.Tensor | None = None,
    form: Form = None,
    normalize: bool | None = None,
) -> torch.Tensor:
    """CARE equivariance loss for a chosen pairing of embeddings.

    - ``pairing="views"`` (authors' code): ``z1 = f(a_1 x)``, ``z2 = f(a_2 x)`` with one pair ``(a_1, a_2)`` per
      chunk; returns ``care_equivariance_loss(z1, z2)``. ``z_clean`` must be None.
    - ``pairing="clean"`` (paper's formula): ``z_clean = f(x)`` is required; ``z1 = f(a_1 x)`` (one ``a_1`` per
      chunk) is compared with it, and so is ``z2 = f(a_2 x)`` when given, the two values being averaged.

    Shape:
        z1, z2, z_clean: (B, D), B divisible by ``chunk_size``.
        returns: scalar.
    """
    check_choice("pairing", pairing, PAIRINGS)

    def term(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return care_equivariance_loss(z_a, z_b, chunk_size, form, normalize)

    if pairing == "views":
        if z2 is None:
            raise ValueError("pairing='views' needs both z1 and z2")
        if z_clean is not None:
            raise ValueError("pairing='views' does not use z_clean; pass pairing='clean' to compare with it")
        return term(z1, z2)
    if z_clean is None:
        raise ValueError("pairing='clean' needs z_clean, the embeddings of the un-augmented inputs")
    if z2 is None:
        return term(z1, z_clean)
    return 0.5 * (term(z1, z_clean) + term(z2, z_clean))


class CAREEquivarianceLoss(nn.Module):
    """Module form of :func:`paired_care_equivariance_loss` (CARE, Gupta et al. 2023).

    form: ``"euclidean"``, ``"minkowski"`` (built for the input dimension at call time), or a symmetric (D, D)
    tensor, kept as a buffer so that it follows ``.to(device)``.

    Shape:
        z1, z2, z_clean: (B, D), B divisible by ``chunk_size``.
        returns: scalar.
    """

    def __init__(
        self,
        chunk_size: int,
        pairing: str = "views",
        form: Form = "euclidean",
        normalize: bool | None = None,
    ) -> None:
        super().__init__()
        check_chunk_size(chunk_size)
        check_choice("pairing", pairing, PAIRINGS)
        self.chunk_size, self.pairing, self.normalize = chunk_size, pairing, normalize
        store_form(self, form)

    def forward(
        self, z1: torch.Tensor, z2: torch.Tensor | None = None, z_clean: torch.Tensor | None = None
    ) -> torch.Tensor:
        return paired_care_equivariance_loss(
            z1, z2, self.chunk_size, self.pairing, z_clean, self.form, self.normalize
        )

    def extra_repr(self) -> str:
        form = "tensor" if isinstance(self.form, torch.Tensor) else repr(self.form)
        return f"chunk_size={self.chunk_size}, pairing={self.pairing!r}, form={form}, normalize={self.normalize}"
