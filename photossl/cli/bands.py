"""``photossl bands``: band diagram along the cell's high-symmetry path, its DOS and complete gaps, as a figure and
numbers."""

from __future__ import annotations

from pathlib import Path

import click

CELL_KINDS = ("levelset", "rods", "holes", "cylinder")


def _float_pair(text: str, name: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{name} must be two numbers 'LOW,HIGH', got '{text}'") from None
    return low, high


@click.command("bands")
@click.option("--eps", "eps_file", type=click.Path(path_type=Path), default=None,
              help="Permittivity map (.npy, .npz, .h5) with axis 0 = x. Omit to generate a cell.")
@click.option("--key", default=None, help="Dataset or array name inside --eps (HDF5/npz).")
@click.option("--cell", "cell_kind", type=click.Choice(CELL_KINDS), default="levelset", show_default=True,
              help="Generated cell kind when --eps is not given.")
@click.option("--group", default="p1", show_default=True, help="Plane group of a generated level-set cell.")
@click.option("--seed", default=0, show_default=True, help="Seed of a generated cell.")
@click.option("--size", default=32, show_default=True, help="Pixels per side of a generated cell.")
@click.option("--max-order", default=1, show_default=True, help="Max Fourier order of a level-set cell.")
@click.option("--eps-in-range", default="1,20", show_default=True, help="eps_in ~ U(LOW, HIGH) (level set).")
@click.option("--eps-out-range", default="1,20", show_default=True, help="eps_out ~ U(LOW, HIGH) (level set).")
@click.option("--filling-range", default="0.01,0.99", show_default=True, help="Filling ~ U(LOW, HIGH).")
@click.option("--radius", default=0.2, show_default=True, help="Radius (in a) of rods/holes/cylinder cells.")
@click.option("--eps-high", default=8.9, show_default=True, help="Dielectric eps of rods/holes/cylinder cells.")
@click.option("--polarization", type=click.Choice(["tm", "te", "both"]), default="both", show_default=True)
@click.option("--n-bands", default=10, show_default=True, help="Number of bands.")
@click.option("--points-per-segment", default=24, show_default=True, help="k-points per path segment.")
@click.option("--grid-size", default=25, show_default=True, help="k-grid per axis for the DOS (SIB-CL: 25).")
@click.option("--accuracy", type=click.Choice(["fast", "standard", "high"]), default="fast", show_default=True,
              help="Solver accuracy preset (photossl.physics.solver_options): fast = the dataset recipe, standard = at "
                   "least MPB resolution 32's accuracy, high = more.")
@click.option("--cutoff", type=float, default=None,
              help="Plane waves with |G| <= cutoff, both polarizations [default: the preset's, 6 for fast].")
@click.option("--dos-axis", type=click.Choice(["omega", "scaled"]), default="omega", show_default=True,
              help="Frequency axis of the figure: omega = ωa/2πc (the DOS per unit ωa/2πc next to the bands), "
                   "scaled = SIB-CL's ω√ε̄a/2πc (the DOS / √ε̄ of the dataset labels; bands scaled alike).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("bands-out"), show_default=True,
              help="Output directory for bands.png, bands.nc and bands.csv.")
def bands(eps_file, key, cell_kind, group, seed, size, max_order, eps_in_range, eps_out_range, filling_range,
          radius, eps_high, polarization, n_bands, points_per_segment, grid_size, accuracy, cutoff, dos_axis, out_dir):
    """Band diagram (Γ-X-M-Γ, or Γ-X-M-Γ-Y-M for cells without a 4-fold axis), DOS and complete gaps of one cell:
    prints the gaps and writes a PNG figure and the numbers (NetCDF + CSV; bands.nc records how the cell was made)."""
    import hashlib
    import json

    from photossl.data.eps_files import read_eps_file
    from photossl.errors import PhotosslError
    from photossl.physics import cylinder_cell, fourier_level_set_cell, validate_eps

    if n_bands < 1 or grid_size < 1 or points_per_segment < 1:
        raise PhotosslError("--n-bands, --grid-size and --points-per-segment must be >= 1")
    from photossl.physics.solver_options import solver_options

    options = solver_options(accuracy) if cutoff is None else solver_options(accuracy, cutoff=cutoff, te_cutoff=None)
    _check_cutoff(options, cutoff, n_bands)
    if eps_file is not None:
        if not eps_file.exists():
            raise PhotosslError(f"permittivity file not found: {eps_file}")
        eps = read_eps_file(eps_file, key).eps
        description = f"{eps_file.name}"
        recipe = {"source": "file", "file": str(eps_file.resolve()), "key": key or "",
                  "file_sha256": hashlib.sha256(eps_file.read_bytes()).hexdigest()}
    elif cell_kind == "levelset":
        ranges = {"filling_range": _float_pair(filling_range, "--filling-range"),
                  "eps_in_range": _float_pair(eps_in_range, "--eps-in-range"),
                  "eps_out_range": _float_pair(eps_out_range, "--eps-out-range")}
        cell = fourier_level_set_cell(seed=seed, n=size, max_order=max_order, group=group, **ranges)
        eps = cell.eps
        description = (f"level set {cell.group}, seed {seed}: ε_in {cell.eps_in:.3g}, ε_out {cell.eps_out:.3g}, "
                       f"filling {cell.filling:.2f}")
        recipe = {"source": "generated", "kind": "levelset", "function": "photossl.physics.fourier_level_set_cell",
                  "group": cell.group, "seed": seed, "size": size, "max_order": max_order,
                  **{name: list(value) for name, value in ranges.items()},
                  "eps_in": cell.eps_in, "eps_out": cell.eps_out, "filling": cell.filling}
    else:
        inside, outside = (1.0, eps_high) if cell_kind == "holes" else (eps_high, 1.0)
        eps = cylinder_cell(radius, inside, outside, n=size)
        description = f"{cell_kind}, r = {radius}a, ε = {eps_high}"
        recipe = {"source": "generated", "kind": cell_kind, "function": "photossl.physics.cylinder_cell",
                  "radius": radius, "eps_inside": inside, "eps_outside": outside, "size": size}
    recipe["bands_options"] = json.dumps({k: str(v) if isinstance(v, Path) else v
                                          for k, v in click.get_current_context().params.items()})
    eps = validate_eps(eps)
    if eps.ndim != 2:
        raise PhotosslError(f"bands needs one 2-D (N, N) cell, got shape {eps.shape}")

    from photossl.physics.band_report import (
        compute_band_report,
        gap_lines,
        write_band_report,
    )

    polarizations = ("tm", "te") if polarization == "both" else (polarization,)
    report = compute_band_report(eps, polarizations, n_bands, points_per_segment, grid_size, recipe=recipe,
                                 options=options)
    paths = write_band_report(report, out_dir, f"{description} (path {report.attrs['path']})", dos_axis)
    for line in gap_lines(report):
        click.echo(line)
    for path in paths:
        click.echo(f"wrote {path}")


def _check_cutoff(options, given: float | None, n_bands: int) -> None:
    """The plane-wave cutoff must keep enough plane waves for the bands and the k·p anchors of the DOS grid."""
    from photossl.errors import PhotosslError
    from photossl.physics.solver import basis_too_small, plane_wave_basis

    if given is not None and given < 0:
        raise PhotosslError(f"--cutoff must be >= 0, got {given:g}")
    cutoff = min(options.cutoff_for("tm"), options.cutoff_for("te"))
    needed = n_bands + (options.anchor_extra_bands if options.anchor_spacing else 0)
    if plane_wave_basis(cutoff, options.basis_shape).size < needed:
        wanted = f"the {needed} bands needed (--n-bands {n_bands} + {needed - n_bands} for the DOS grid)"
        raise PhotosslError("--" + basis_too_small(cutoff, needed, wanted=wanted))
