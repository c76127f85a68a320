"""Symmetries of square-lattice unit cells: D4 point operations, periodic translations and ε scaling.

Elements act exactly on pixels (rotations about pixel 0), on whole batches on their device without per-sample
loops, and on targets (DOS, gaps, band structures on k-point grids, frequencies). Policies say which
transformations are augmentations (invariances) and which group a model predicts (E-SSL, CARE).
"""

from photossl.symmetry.batch import ElementBatch
from photossl.symmetry.elements import (
    D4_MATRICES,
    IDENTITY_MATRIX,
    MIRROR_MATRICES,
    ROTATION_MATRIX,
    Element,
    d4_label,
)
from photossl.symmetry.groups import (
    D4,
    FINITE_GROUPS,
    FiniteGroup,
    Flips,
    HalfTranslations,
    Rot4,
    draw_labels,
    finite_group,
)
from photossl.symmetry.pixel_action import apply_elements, scale_values, source_index, vectorised_roll
from photossl.symmetry.policy import (
    PREDICT_NAMES,
    PRESETS,
    TRANSFORM_NAMES,
    SymmetryPolicy,
    parse_policy,
    policy_preset,
)
from photossl.symmetry.targets import (
    TARGET_NAMES,
    kpoint_permutation,
    kpoint_permutation_table,
    transform_target,
    transform_target_batch,
    transform_target_labels,
)

__all__ = [
    "D4",
    "D4_MATRICES",
    "FINITE_GROUPS",
    "IDENTITY_MATRIX",
    "MIRROR_MATRICES",
    "PREDICT_NAMES",
    "PRESETS",
    "ROTATION_MATRIX",
    "TARGET_NAMES",
    "TRANSFORM_NAMES",
    "Element",
    "ElementBatch",
    "FiniteGroup",
    "Flips",
    "HalfTranslations",
    "Rot4",
    "SymmetryPolicy",
    "apply_elements",
    "d4_label",
    "draw_labels",
    "finite_group",
    "kpoint_permutation",
    "kpoint_permutation_table",
    "parse_policy",
    "policy_preset",
    "scale_values",
    "source_index",
    "transform_target",
    "transform_target_batch",
    "transform_target_labels",
    "vectorised_roll",
]
