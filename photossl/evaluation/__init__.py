"""Evaluation: regression metrics (SIB-CL DOS error), learned-symmetry diagnostics (invariance, Wahba, CARE's γ_f,
group consistency) and the study's figures."""

from photossl.evaluation.diagnostics import (
    DEFAULT_GROUPS,
    diagnostics_to_dataset,
    element_name,
    group_orbits,
    orbit_embeddings,
    product_table,
    symmetry_diagnostics,
)
from photossl.evaluation.equivariance import (
    OrbitFit,
    composition_errors,
    fit_orbit_rotations,
    invariance_error,
    relative_rotational_equivariance,
)
from photossl.evaluation.metrics import (
    DOS_START,
    DOS_STOP,
    dos_relative_l1,
    mean_absolute_error,
    pooled_relative_error,
    relative_l1,
)
from photossl.evaluation.plots import (
    budget_at_error,
    error_cuts,
    label_saving_factors,
    load_results_table,
    plot_dos_predictions,
    plot_embedding_orbits,
    plot_error_vs_labels,
    plot_symmetry_errors,
)
from photossl.evaluation.wahba import wahba_error, wahba_rotation

__all__ = [
    "DEFAULT_GROUPS",
    "DOS_START",
    "DOS_STOP",
    "OrbitFit",
    "budget_at_error",
    "composition_errors",
    "diagnostics_to_dataset",
    "dos_relative_l1",
    "element_name",
    "error_cuts",
    "fit_orbit_rotations",
    "group_orbits",
    "invariance_error",
    "label_saving_factors",
    "load_results_table",
    "mean_absolute_error",
    "orbit_embeddings",
    "plot_dos_predictions",
    "plot_embedding_orbits",
    "plot_error_vs_labels",
    "plot_symmetry_errors",
    "pooled_relative_error",
    "product_table",
    "relative_l1",
    "relative_rotational_equivariance",
    "symmetry_diagnostics",
    "wahba_error",
    "wahba_rotation",
]
