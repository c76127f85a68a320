"""Which symmetry structure did an encoder learn? Invariance, Wahba, γ_f and group consistency per transformation.

:func:`symmetry_diagnostics` embeds a batch of cells and every transformed copy of it under finite groups of
:mod:`photossl.symmetry`, and reports plain floats and lists (JSON-ready); :func:`diagnostics_to_dataset` turns
that into an xarray Dataset for storage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any, Iterator, Union

import numpy as np
import torch
import xarray as xr
from torch import nn

from photossl.errors import PhotosslError
from photossl.evaluation.equivariance import (
    composition_errors,
    fit_orbit_rotations,
    invariance_error,
    relative_rotational_equivariance,
)
from photossl.evaluation.wahba import wahba_error
from photossl.symmetry import Element, FiniteGroup, d4_label, finite_group

DEFAULT_GROUPS = ("rot4", "flip", "half_translate")
# D4 in label order k + 4f = R^k m_x^f (see photossl.symmetry.elements).
POINT_NAMES = ("r90", "r180", "r270", "mx", "ma", "my", "md")

GroupSpec = Union[str, FiniteGroup]
Encoder = Callable[[torch.Tensor], torch.Tensor]


def element_name(element: Element) -> str:
    """Short ASCII name: 'e', 'r90', 'mx' (mirror x), 'my', 'md' / 'ma' (diagonal / antidiagonal mirror),
    't(1/2,0)' for a translation, 'r90+t(1/2,0)' for both, with '*s' for an ε scale s ≠ 1."""
    label = d4_label(element.point)
    parts = [] if label == 0 else [POINT_NAMES[label - 1]]
    if any(element.shift):
        parts.append(f"t({element.shift[0]},{element.shift[1]})")
    name = "+".join(parts) or "e"
    return name if element.scale == 1 else f"{name}*{element.scale}"


def product_table(group: FiniteGroup) -> np.ndarray:
    """(G, G) int64 with [g, h] = label of g∘h (h acting first, as ``Element.__matmul__``)."""
    return np.array([[group.label(g @ h) for h in group] for g in group], dtype=np.int64)


@contextmanager
def _eval_mode(*modules: Any) -> Iterator[None]:
    # Diagnostics must not update BatchNorm statistics; the caller's train/eval state is restored afterwards.
    states = [(m, m.training) for m in modules if isinstance(m, nn.Module)]
    for m, _ in states:
        m.eval()
    try:
        yield
    finally:
        for m, training in states:
            m.train(training)


def _forward(fn: Encoder, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(chunk) for chunk in x.split(batch_size)])


def _resolve_group(spec: GroupSpec) -> FiniteGroup:
    if isinstance(spec, FiniteGroup):
        return spec
    return finite_group(spec)


def _module_device(*modules: Any) -> torch.device | None:
    for m in modules:
        if isinstance(m, nn.Module):
            for p in m.parameters():
                return p.device
    return None


def _prepare_images(images: Any, device: torch.device | str | None, encoder: Any) -> torch.Tensor:
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise PhotosslError(f"images must be (B, C, N, N) cells, got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise PhotosslError(f"symmetry diagnostics need at least 2 cells (pairs x, x'), got {x.shape[0]}")
    target = device if device is not None else _module_device(encoder)
    x = x.to(device=target) if target is not None else x
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def group_orbits(encoder: Encoder, images: torch.Tensor, group: GroupSpec, batch_size: int = 256) -> torch.Tensor:
    """Embeddings of every group element applied to every cell (the encoder is called as it is; see
    :func:`symmetry_diagnostics` for eval mode and devices).

    Shape: images (B, C, N, N) -> (G, B, d) with [l, i] = f(g_l x_i).
    """
    group = _resolve_group(group)
    views, _ = group.expand(images)
    z = _forward(encoder, views, batch_size)
    return z.reshape(group.order, images.shape[0], -1)


def orbit_embeddings(
    encoder: Encoder,
    images: Any,
    group: GroupSpec = "rot4",
    device: torch.device | str | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Embeddings of a few cells and their orbits, ready for :func:`photossl.evaluation.plot_embedding_orbits`.

    Returns (embeddings (G·B, d), orbit_labels (G·B,) cell index, element_names (G·B,)) with rows cell-major:
    the G points of cell 0 first, in group label order.
    """
    group = _resolve_group(group)
    x = _prepare_images(images, device, encoder)
    with _eval_mode(encoder):
        z = group_orbits(encoder, x, group, batch_size)  # (G, B, d)
    order, batch = z.shape[:2]
    names = [element_name(e) for e in group]
    embeddings = z.transpose(0, 1).reshape(order * batch, -1).detach().cpu().double().numpy()
    return embeddings, np.repeat(np.arange(batch), order), names * batch


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def symmetry_diagnostics(
    encoder: Encoder,
    images: Any,
    groups: Sequence[GroupSpec] = DEFAULT_GROUPS,
    device: torch.device | str | None = None,
    *,
    prediction_head: Encoder | None = None,
    prediction_group: GroupSpec = "rot4",
    relative_prediction: bool = False,
    proper: bool = True,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Learned-symmetry diagnostics of ``encoder`` on ``images``.

    ``encoder`` is any module or function (B, C, N, N) -> (B, d): pass ``nn.Sequential(encoder, projector)`` to study
    the space a contrastive loss acts on. Modules are put in eval mode for the measurement and restored afterwards.
    ``images`` go to ``device`` (default: the encoder's parameter device); the encoder must already be there.

    Per non-identity transformation g of each group (embeddings z = f(x), z_g = f(g x)):
      - ``invariance_error``: mean ‖z_g − z‖ / mean ‖z − z′‖ over pairs of cells (raw embeddings);
      - ``wahba_error``: min over SO(d) (O(d) if ``proper=False``) of ‖z Rᵀ − z_g‖_F / ‖z_g‖_F on
        L2-normalised embeddings; ``wahba_error_raw`` the same on raw embeddings;
      - ``gamma_f``: CARE's relative rotational equivariance on L2-normalised embeddings (None where g fixes every
        embedding, which makes it 0/0).
    Per group: ``gamma_f`` (mean over its non-identity elements); R_g fitted (in O(k)) on the whole orbit in the
    k-dimensional span of the orbit embeddings (``subspace_dim``), with ``composition_error[g][h]`` =
    ‖R_g R_h − R_{g∘h}‖_F / √k and ``composition_error_data`` the same weighted by the data (see
    :func:`~photossl.evaluation.equivariance.composition_errors`); ``*_mean`` / ``*_max`` over pairs of
    non-identity elements.
    With ``prediction_head`` (encoder features -> logits over ``prediction_group``'s labels): ``prediction`` holds the
    transformation-prediction accuracy over every cell and element, and per label. ``relative_prediction``: the head
    reads the features of (x, g·x) concatenated, and a prediction counts as right anywhere in the coset of g under
    the cell's own point symmetry (as relative E-SSL is trained).

    Use many more cells than embedding dimensions (B ≫ d): with B <= d nearly any transformation is fitted well by
    some orthogonal map, so the Wahba errors say little. Memory and time grow as B² (all pairs of cells).

    Shape: images (B, C, N, N) with B >= 2 -> dict of floats / lists (None for undefined values), JSON-ready.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise PhotosslError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not groups:
        raise PhotosslError("groups must name at least one finite group")
    resolved = [_resolve_group(g) for g in groups]
    x = _prepare_images(images, device, encoder)
    result: dict[str, Any] = {"n_samples": int(x.shape[0]), "proper": bool(proper), "transformations": [], "groups": {}}
    with _eval_mode(encoder, prediction_head):
        for group in resolved:
            orbits = group_orbits(encoder, x, group, batch_size)
            result["feature_dim"] = int(orbits.shape[-1])
            rows, group_summary = _group_diagnostics(group, orbits, proper)
            result["transformations"] += rows
            result["groups"][group.name] = group_summary
        result["prediction"] = (
            None
            if prediction_head is None
            else _prediction_accuracy(encoder, prediction_head, x, _resolve_group(prediction_group), batch_size,
                                      relative_prediction)
        )
    return result


def _group_diagnostics(group: FiniteGroup, orbits: torch.Tensor, proper: bool) -> tuple[list[dict], dict]:
    z = orbits[0]
    rows = []
    for label in range(1, group.order):
        z_g = orbits[label]
        gamma = relative_rotational_equivariance(_unit(z), _unit(z_g))
        rows.append(
            {
                "group": group.name,
                "label": label,
                "name": element_name(group.element(label)),
                "invariance_error": invariance_error(z, z_g),
                "wahba_error": wahba_error(z, z_g, proper=proper, normalize=True),
                "wahba_error_raw": wahba_error(z, z_g, proper=proper),
                "gamma_f": _finite(gamma),
            }
        )
    products = product_table(group)
    fit = fit_orbit_rotations(_unit(orbits), products)
    operator = composition_errors(fit.rotations, products)
    data = composition_errors(fit.rotations, products, fit.points)
    inner = (slice(1, None), slice(1, None))  # pairs of non-identity elements
    summary = {
        "order": group.order,
        "names": [element_name(e) for e in group],
        "gamma_f": _finite(_nanmean([r["gamma_f"] if r["gamma_f"] is not None else math.nan for r in rows])),
        "subspace_dim": int(fit.basis.shape[1]),
        "composition_error": operator.tolist(),
        "composition_error_mean": float(operator[inner].mean()) if group.order > 1 else 0.0,
        "composition_error_max": float(operator[inner].max()) if group.order > 1 else 0.0,
        "composition_error_data": data.tolist(),
        "composition_error_data_mean": float(data[inner].mean()) if group.order > 1 else 0.0,
        "composition_error_data_max": float(data[inner].max()) if group.order > 1 else 0.0,
    }
    return rows, summary


def _unit(z: torch.Tensor) -> torch.Tensor:
    z = z.double()
    return z / z.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)


def _prediction_accuracy(
    encoder: Encoder, head: Encoder, x: torch.Tensor, group: FiniteGroup, batch_size: int, relative: bool = False
) -> dict[str, Any]:
    from photossl.symmetry.relative import coset_mask, stabiliser_mask

    views, labels = group.expand(x)
    if relative:
        features = _forward(encoder, views, batch_size)
        anchors = features[: x.shape[0]].repeat(group.order, 1)
        logits = _forward(head, torch.cat([anchors, features], dim=1), batch_size)
    else:
        logits = _forward(lambda v: head(encoder(v)), views, batch_size)
    if logits.dim() != 2 or logits.shape[1] != group.order:
        raise PhotosslError(
            f"prediction_head must output (B, {group.order}) logits for group '{group.name}', got {tuple(logits.shape)}"
        )
    if relative:
        stabiliser = stabiliser_mask(group, x, modulo_translations=group.name != "half_translate")
        right = coset_mask(group, labels, stabiliser.repeat(group.order, 1))
        correct = right.gather(1, logits.argmax(dim=1, keepdim=True)).squeeze(1).double()
    else:
        correct = (logits.argmax(dim=1) == labels).double()
    per_label = correct.reshape(group.order, -1).mean(dim=1)
    return {
        "group": group.name,
        "accuracy": float(correct.mean()),
        "per_label_accuracy": [float(a) for a in per_label],
        "names": [element_name(e) for e in group],
    }


def diagnostics_to_dataset(diagnostics: dict[str, Any]) -> xr.Dataset:
    """The output of :func:`symmetry_diagnostics` as a Dataset: per-transformation variables on dim
    ``transformation`` (coords ``group``, ``label``, ``name``), per-group summaries on dim ``group_name``, and each
    group's composition table as ``composition_error_<group>`` on dims (``<group>_g``, ``<group>_h``)."""
    rows = diagnostics["transformations"]
    ids = [f"{r['group']}:{r['name']}" for r in rows]
    coords = {
        "transformation": ids,
        "group": ("transformation", [r["group"] for r in rows]),
        "label": ("transformation", [r["label"] for r in rows]),
        "name": ("transformation", [r["name"] for r in rows]),
    }
    data = {
        key: ("transformation", np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=np.float64))
        for key in ("invariance_error", "wahba_error", "wahba_error_raw", "gamma_f")
    }
    names = list(diagnostics["groups"])
    summaries = diagnostics["groups"]
    for key in ("gamma_f", "composition_error_mean", "composition_error_max", "composition_error_data_mean"):
        values = [np.nan if summaries[g][key] is None else summaries[g][key] for g in names]
        data[f"group_{key}"] = ("group_name", np.array(values, dtype=np.float64))
    data["group_subspace_dim"] = ("group_name", np.array([summaries[g]["subspace_dim"] for g in names]))
    coords["group_name"] = names
    for g in names:
        element_names = summaries[g]["names"]
        data[f"composition_error_{g}"] = ((f"{g}_g", f"{g}_h"), np.array(summaries[g]["composition_error"]))
        coords[f"{g}_g"] = element_names
        coords[f"{g}_h"] = element_names
    attrs = {
        "n_samples": diagnostics["n_samples"],
        "feature_dim": diagnostics.get("feature_dim", -1),
        "proper": int(diagnostics["proper"]),
        "description": "learned-symmetry diagnostics (invariance error, Wahba error, CARE gamma_f, composition)",
    }
    prediction = diagnostics.get("prediction")
    if prediction is not None:
        attrs["prediction_group"] = prediction["group"]
        attrs["prediction_accuracy"] = prediction["accuracy"]
    return xr.Dataset(data, coords=coords, attrs=attrs)
