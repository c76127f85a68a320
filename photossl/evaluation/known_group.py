"""How close a learned embedding is to a prescribed representation ρ, per irreducible block.

For known-group CARE the target is f(g·x) = ρ(g) f(x) on L2-normalised embeddings. Per block of ρ (the coordinates
of one irreducible type) and per element g: ``prescribed_error`` = ‖F_g − F ρ(g)ᵀ‖ / ‖F_g‖ (the map asked
for) and ``wahba_error`` = min over orthogonal R of ‖F_g − F Rᵀ‖ / ‖F_g‖ (the best map of any kind, as CARE
measures), so a block where the second is small and the first large has learnt *an* orthogonal action but not the
prescribed one.
``composition_error``: ‖R_g R_h − R_{gh}‖_F / √k over the fitted maps of each block, mean over pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from photossl.evaluation.diagnostics import Encoder, _eval_mode, _prepare_images, _unit, group_orbits, product_table
from photossl.evaluation.wahba import wahba_error, wahba_rotation
from photossl.symmetry.groups import FiniteGroup
from photossl.symmetry.representations import Representation


def known_group_diagnostics(embed: Encoder, images: torch.Tensor, group: FiniteGroup,
                            representation: Representation, batch_size: int = 256) -> dict[str, Any]:
    """Per-irreducible prescribed and Wahba errors of ``embed`` (cells -> (B, D) embeddings) under ``group``.

    Shape: images (B, C, N, N) -> dict of floats (JSON-ready): ``blocks[irrep]`` with ``dim``, ``prescribed_error``,
    ``wahba_error`` (means over non-identity elements) and ``composition_error``; ``overall`` the same on all D.
    """
    x = _prepare_images(images, None, embed)
    with _eval_mode(embed):
        orbits = _unit(group_orbits(embed, x, group, batch_size))  # (G, B, D)
    rho = representation.matrices.to(orbits.dtype).to(orbits.device)
    table = product_table(group)
    slices = {name: np.concatenate([np.arange(s.start, s.stop) for s in parts])
              for name, parts in representation.irrep_slices().items()}
    slices = {"overall": np.arange(representation.dim), **slices}
    out: dict[str, Any] = {"group": group.name, "n_samples": int(x.shape[0]), "blocks": {}}
    for name, index in slices.items():
        idx = torch.as_tensor(index, device=orbits.device)
        f = orbits[0][:, idx]
        prescribed, wahba, rotations = [], [], [np.eye(len(index))]
        for g in range(1, group.order):
            f_g = orbits[g][:, idx]
            r_g = rho[g][idx][:, idx]
            norm = float(f_g.norm()) or 1.0
            prescribed.append(float((f_g - f @ r_g.T).norm()) / norm)
            wahba.append(wahba_error(f, f_g, proper=False))
            rotations.append(wahba_rotation(f.cpu().numpy(), f_g.cpu().numpy(), proper=False))
        k = len(index)
        composition = [np.linalg.norm(rotations[g] @ rotations[h] - rotations[table[g, h]]) / np.sqrt(k)
                       for g in range(1, group.order) for h in range(1, group.order)]
        out["blocks"][name] = {"dim": k, "prescribed_error": float(np.mean(prescribed)),
                               "wahba_error": float(np.mean(wahba)), "composition_error": float(np.mean(composition))}
    return out
