"""The chunk schema: every variable a photossl chunk file may hold (dims, dtype, units, description) and how chunks
are encoded on disk. ``photossl generate`` and ``photossl import-sibcl`` both write through it, so a dataset reads
the same whichever made it.

Per-polarization variables are named ``<name>_<pol>`` (``bands_tm``, ``dos_te``); ``dos`` and ``dos_eldiff`` repeat
the first polarization's. Writers may give a variable a more specific description (an import says where a value
came from); dims, dtype and units are the schema's.
"""

from __future__ import annotations

import hashlib

import numpy as np

from photossl.errors import PhotosslError

UNITS = (
    "lattice constant a = 1; frequencies omega a / (2 pi c); k in fractions of the reciprocal lattice vectors "
    "(2 pi / a); group velocities in units of c; DOS per unit frequency per Brillouin zone, on the scaled frequency "
    "freq = omega sqrt(eps_mean) a / (2 pi c); eps is relative permittivity"
)
GAP_FIELDS = ("lower_edge", "upper_edge", "gap_to_midgap")
POLARIZATIONS = ("tm", "te")
CELL_SEED_RULE = "int(np.random.SeedSequence([seed, cell]).generate_state(1, np.uint64)[0] >> 1)"
FREQUENCY = "omega a / (2 pi c)"
WAVEVECTOR = "2 pi / a"

_CELL = ("cell",)
# name -> (dims, dtype, attributes); "{POL}" in a description is the polarization in capitals
VARIABLES: dict[str, tuple[tuple[str, ...], str, dict]] = {
    "eps": (("cell", "x", "y"), "float32", {"long_name": "relative permittivity (labels use these values)"}),
    "cell_seed": (_CELL, "int64", {"rule": CELL_SEED_RULE}),
    "source_key": (_CELL, "int64", {"long_name": "cell key in the source file"}),
    "eps_in": (_CELL, "float64", {"long_name": "permittivity of the inside phase"}),
    "eps_out": (_CELL, "float64", {"long_name": "permittivity of the outside phase"}),
    "eps_avg_nominal": (_CELL, "float64", {"long_name": "nominal mean permittivity"}),
    "filling": (_CELL, "float64", {"long_name": "requested fraction of the cell holding eps_out"}),
    "fill_fraction": (_CELL, "float64", {"long_name": "fraction of pixels holding eps_out"}),
    "eps_mean": (_CELL, "float64", {"long_name": "mean of the stored eps"}),
    "level": (_CELL, "float64", {"long_name": "level of the Fourier sum"}),
    "coef_real": (("cell", "gx", "gy"), "float64",
                  {"long_name": "Fourier coefficient c_G of the level-set function, G = (gx, gy)"}),
    "coef_imag": (("cell", "gx", "gy"), "float64",
                  {"long_name": "Fourier coefficient c_G of the level-set function, G = (gx, gy)"}),
    "radius": (_CELL, "float64", {"long_name": "cylinder radius", "units": "a"}),
    "bands_{pol}": (("cell", "k", "band"), "float32", {"long_name": "{POL} band frequencies", "units": FREQUENCY}),
    "group_velocity_{pol}": (("cell", "k", "band", "component"), "float32",
                             {"long_name": "{POL} group velocity d omega / dk", "units": "c"}),
    "gaps_{pol}": (("cell", "band_pair", "gap_field"), "float32",
                   {"long_name": "{POL} gap between bands n and n+1 (edges; gap-to-midgap ratio, 0 if none)"}),
    "dos_{pol}": (("cell", "freq"), "float32", {"long_name": "{POL} DOS / sqrt(eps_mean) (SIB-CL DOSn)"}),
    "dos_eldiff_{pol}": (("cell", "freq"), "float32",
                         {"long_name": "{POL} DOS / sqrt(eps_mean) - 2 pi freq (SIB-CL DOSeldiffn, the target)"}),
}
# name -> (dim, dtype, attributes)
COORDINATES: dict[str, tuple[str, str | None, dict]] = {
    "cell": ("cell", "int64", {}),
    "freq": ("freq", "float64", {"long_name": "scaled frequency omega sqrt(eps_mean) a / (2 pi c)"}),
    "k_x": ("k", None, {"units": WAVEVECTOR}),
    "k_y": ("k", None, {"units": WAVEVECTOR}),
    "gap_field": ("gap_field", None, {}),
    "component": ("component", None, {}),
    "gx": ("gx", "int64", {}),
    "gy": ("gy", "int64", {}),
}
# Attributes that differ between the chunks of one dataset (dropped from a dataset's attributes when it is opened).
CHUNK_ATTRS = ("data_sha256", "chunk_start", "chunk_stop")


def _template(name: str) -> tuple[tuple[str, ...], str, dict]:
    if name in VARIABLES:
        return VARIABLES[name]
    stem, _, polarization = name.rpartition("_")
    if polarization in POLARIZATIONS and f"{stem}_{{pol}}" in VARIABLES:
        dims, dtype, attrs = VARIABLES[f"{stem}_{{pol}}"]
        return dims, dtype, {k: v.replace("{POL}", polarization.upper()) for k, v in attrs.items()}
    if name in ("dos", "dos_eldiff"):
        raise PhotosslError(f"chunk variable '{name}' repeats a polarization's: use variable('{name}_<pol>', ...)")
    raise PhotosslError(f"'{name}' is not a variable of the photossl chunk schema")


def variable(name: str, values, **attrs) -> tuple[tuple[str, ...], np.ndarray, dict]:
    """(dims, values in the schema's dtype, attributes) of chunk variable ``name``, for ``xarray.Dataset``;
    ``attrs`` add to the schema's attributes or replace them (a more specific ``long_name``)."""
    dims, dtype, defaults = _template(name)
    array = np.asarray(values).astype(dtype, copy=False)
    if array.ndim != len(dims):
        raise PhotosslError(f"chunk variable '{name}' has dims {dims}, got an array of shape {array.shape}")
    return dims, array, {**defaults, **attrs}


def coordinate(name: str, values) -> tuple:
    """(dim, values, attributes) of chunk coordinate ``name`` (``cell``, ``freq``, ``k_x``, ``gap_field``, ...)."""
    dim, dtype, attrs = COORDINATES[name]
    array = np.asarray(values) if dtype is None else np.asarray(values).astype(dtype, copy=False)
    return (dim, array, dict(attrs)) if attrs else (dim, array)


def gap_field_coordinate() -> tuple:
    """The ``gap_field`` coordinate of every gap table (lower edge, upper edge, gap-to-midgap ratio)."""
    return coordinate("gap_field", np.array(GAP_FIELDS))


def dataset_sha256(dataset) -> str:
    """Hex sha256 over the arrays of an xarray Dataset (data variables and coordinates, by name; attributes excluded).

    Two datasets with the same variables, dtypes, shapes and values have the same digest, however they were stored.
    """
    digest = hashlib.sha256()
    for name in sorted(map(str, dataset.variables)):
        values = np.ascontiguousarray(dataset[name].values)
        # strings come back from NetCDF as objects: hash their text, not their numpy representation
        text = values.dtype.kind in "OUS"
        header = f"{name}|{'str' if text else values.dtype.str}|{values.shape}|{dataset[name].dims}\n"
        digest.update(header.encode())
        digest.update("\x00".join(map(str, values.ravel())).encode() if text else values.tobytes())
    return digest.hexdigest()


def stamp_chunk(dataset, start: int, stop: int):
    """Give ``dataset`` (cells [start, stop)) the per-chunk attributes: its cell range and ``data_sha256``, the
    digest of its arrays (:func:`dataset_sha256`), computed last."""
    dataset.attrs["chunk_start"] = int(start)
    dataset.attrs["chunk_stop"] = int(stop)
    dataset.attrs["data_sha256"] = dataset_sha256(dataset)
    return dataset


def chunk_encoding(dataset) -> dict:
    """How a chunk is stored: gzip + shuffle (deterministic bytes) for every per-cell array of two or more dims, one
    HDF5 chunk per cell (a cell's bands hold its k <-> -k repeats, which compress within the cell)."""
    return {
        name: {"zlib": True, "complevel": 4, "shuffle": True, "chunksizes": (1, *variable.shape[1:])}
        for name, variable in dataset.data_vars.items()
        if variable.ndim >= 2 and variable.dims[0] == "cell"
    }
