"""Band diagram + DOS + complete gaps of one cell as an xarray Dataset, and its figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from photossl.files import replace_atomically
from photossl.physics.gaps import band_gaps
from photossl.physics.kpoints import (
    cell_point_group,
    gxmg_path,
    irreducible_path_vertices,
)
from photossl.physics.labels import label_cell
from photossl.physics.solver import solve_bands
from photossl.physics.solver_options import SolverOptions, solver_options
from photossl.provenance import photossl_version

GAP_MIN_RATIO = 1e-3  # gap-to-midgap ratios at or below this are numerical slivers, not gaps
GAP_FIELDS = ("lower_edge", "upper_edge", "gap_to_midgap")
DOS_AXES = ("omega", "scaled")


def compute_band_report(
    eps: np.ndarray,
    polarizations: tuple[str, ...] = ("tm", "te"),
    n_bands: int = 10,
    points_per_segment: int = 24,
    grid_size: int = 25,
    cutoff: float | None = None,
    recipe: dict | None = None,
    options: SolverOptions | str | None = None,
) -> xr.Dataset:
    """Bands along the cell's high-symmetry path, the SIB-CL DOS and the complete gaps per polarization.

    Path: Γ-X-M-Γ for cells with a 4-fold axis, Γ-X-M-Γ-Y-M otherwise
    (:func:`~photossl.physics.kpoints.irreducible_path_vertices`). Complete gaps are read off the ``grid_size``²
    k-grid of the DOS and the path together, so a gap that exists along some directions only is never reported.

    Variables: ``eps`` (x, y); per polarization P: ``bands_P`` (path, band) in ωa/2πc; ``dos_P`` (freq), SIB-CL's
    DOS / √ε̄ on the scaled axis ``freq`` = ω√ε̄a/2πc; ``dos_physical_P`` (freq), the DOS per unit ωa/2πc at
    ``omega`` (freq) = freq / √ε̄; ``dos_eldiff_P``; ``gaps_P`` (band_pair, gap_field): lower edge, upper edge
    (ωa/2πc) and gap-to-midgap ratio of each band pair, zero where there is no gap. Attributes: the solver settings,
    ``path`` (its vertices), ``gaps`` (one readable line) and the cell's ``recipe_*`` (how it was made).

    ``options``: the accuracy preset or SolverOptions (default the "fast" label recipe); ``cutoff`` overrides its
    plane-wave cutoff for both polarizations. The path is solved exactly at every k-point with the same basis.
    """
    rotations = cell_point_group(eps)
    vertices = irreducible_path_vertices(rotations)
    path = gxmg_path(points_per_segment, vertices)
    options = solver_options(options) if cutoff is None else solver_options(options, cutoff=cutoff, te_cutoff=None)
    eps_mean = float(np.mean(eps))
    data_vars = {"eps": (("x", "y"), eps, {"long_name": "relative permittivity"})}
    gap_rows = []
    freq_axis = None
    for pol in polarizations:
        path_bands = solve_bands(eps, path.kpoints, pol, n_bands, options=options.replace(anchor_spacing=None))
        labels = label_cell(eps, pol, n_bands, grid_size, solver_options=options)
        freq_axis = labels.dos.freq
        data_vars[f"bands_{pol}"] = (("path", "band"), path_bands, {"units": "omega a / 2 pi c"})
        data_vars[f"dos_{pol}"] = (("freq",), labels.dos.dos_normalized,
                                   {"long_name": "DOS / sqrt(mean eps) vs freq = omega sqrt(mean eps) (SIB-CL)"})
        data_vars[f"dos_physical_{pol}"] = (("freq",), labels.dos.dos_normalized * np.sqrt(eps_mean),
                                            {"long_name": "DOS vs omega (coordinate 'omega')",
                                             "units": "states per unit (omega a / 2 pi c) per unit cell"})
        data_vars[f"dos_eldiff_{pol}"] = (("freq",), labels.dos.eldiff,
                                          {"long_name": "DOS / sqrt(mean eps) - 2 pi freq (SIB-CL target)"})
        table = np.zeros((n_bands - 1, 3))
        for gap in band_gaps(np.concatenate([labels.frequencies, path_bands]), min_ratio=GAP_MIN_RATIO):
            table[gap.lower_band - 1] = (gap.lower_edge, gap.upper_edge, gap.gap_to_midgap)
            gap_rows.append((pol, gap.lower_band, gap.lower_edge, gap.upper_edge, gap.gap_to_midgap))
        data_vars[f"gaps_{pol}"] = (("band_pair", "gap_field"), table,
                                    {"long_name": "complete gap per band pair (k-grid and path): lower edge, upper "
                                                  "edge (omega a / 2 pi c), gap-to-midgap ratio; 0 = no gap"})
    coords = {
        "path": np.arange(len(path.kpoints)),
        "k_x": ("path", path.kpoints[:, 0]),
        "k_y": ("path", path.kpoints[:, 1]),
        "distance": ("path", path.distance),
        "band": np.arange(1, n_bands + 1),
        "band_pair": ("band_pair", np.arange(1, n_bands), {"long_name": "lower band of the pair (1-based)"}),
        "gap_field": ("gap_field", list(GAP_FIELDS)),
        "freq": ("freq", freq_axis, {"units": "omega sqrt(mean eps) a / 2 pi c"}),
        "omega": ("freq", freq_axis / np.sqrt(eps_mean), {"units": "omega a / 2 pi c"}),
    }
    attrs = {
        "photossl_version": photossl_version(),
        "solver": "pwe",
        "cutoff": options.cutoff,
        "solver_options": str(options.as_dict()),
        "grid_size": grid_size,
        "n_bands": n_bands,
        "eps_mean": eps_mean,
        "point_group_order": len(rotations),
        "path": "-".join(path.tick_labels),
        "tick_positions": path.tick_positions,
        "tick_labels": ",".join(path.tick_labels),
        "gaps": "; ".join(f"{p} {b}-{b + 1}: {lo:.5f}-{hi:.5f} ({r:.2%})" for p, b, lo, hi, r in gap_rows) or "none",
    }
    for key, value in (recipe or {}).items():
        attrs[f"recipe_{key}"] = value if isinstance(value, (int, float, str)) else str(value)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def gap_lines(report: xr.Dataset) -> list[str]:
    """One readable line per polarization: its complete gaps, or that it has none."""
    lines = []
    for name in report.data_vars:
        if not name.startswith("gaps_"):
            continue
        pol = name.split("_")[1].upper()
        table = report[name].values
        found = [(int(pair), *row) for pair, row in zip(report["band_pair"].values, table) if row[2] > 0]
        if not found:
            lines.append(f"{pol}: no complete gap between any of the {report.sizes['band']} bands")
            continue
        lines.append(f"{pol} gaps: " + "; ".join(
            f"bands {b}-{b + 1} at ωa/2πc {lo:.4f}-{hi:.4f} ({ratio:.1%} of midgap)" for b, lo, hi, ratio in found))
    return lines


def plot_band_report(report: xr.Dataset, title: str = "", dos_axis: str = "omega"):
    """Figure: the cell, the band diagram per polarization with the complete gaps shaded, and the DOS drawn along
    the band diagram's frequency axis.

    ``dos_axis``: 'omega' (ωa/2πc, the DOS per unit ωa/2πc) or 'scaled' (SIB-CL's ω√ε̄a/2πc and DOS / √ε̄;
    the band frequencies are scaled by √ε̄ too, so both panels keep one axis).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if dos_axis not in DOS_AXES:
        raise ValueError(f"dos_axis must be one of {', '.join(DOS_AXES)}, got {dos_axis!r}")
    scale = float(np.sqrt(report.attrs["eps_mean"])) if dos_axis == "scaled" else 1.0
    pols = [name.split("_")[1] for name in report.data_vars if name.startswith("bands_")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1.7, 0.8]})
    image = axes[0].imshow(report["eps"].values.T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
    axes[0].set_xlabel("x / a")
    axes[0].set_ylabel("y / a")
    axes[0].set_title("unit cell")
    fig.colorbar(image, ax=axes[0], fraction=0.046, label="ε")
    colours = {"tm": "tab:blue", "te": "tab:red"}
    band_ax, dos_ax = axes[1], axes[2]
    dos_ax.sharey(band_ax)
    distance = report["distance"].values
    top = 0.0
    for pol in pols:
        bands = report[f"bands_{pol}"].values * scale
        top = max(top, float(bands.max()))
        for b in range(bands.shape[1]):
            band_ax.plot(distance, bands[:, b], color=colours[pol], lw=1.2)
        if dos_axis == "scaled":
            y, x = report["freq"].values, report[f"dos_{pol}"].values
        else:
            y, x = report["omega"].values, report[f"dos_physical_{pol}"].values
        dos_ax.plot(x, y, color=colours[pol], lw=1.2, label=pol.upper())
        for pair, (lo, hi, ratio) in zip(report["band_pair"].values, report[f"gaps_{pol}"].values):
            if ratio <= 0:
                continue
            for ax in (band_ax, dos_ax):
                ax.axhspan(lo * scale, hi * scale, color=colours[pol], alpha=0.18, lw=0)
            band_ax.text(distance[-1] * 0.99, 0.5 * (lo + hi) * scale, f"{pol.upper()} gap {pair}-{pair + 1}: "
                         f"{ratio:.1%}", ha="right", va="center", fontsize=8, color=colours[pol],
                         bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
    empty_y = report["freq"].values if dos_axis == "scaled" else report["omega"].values
    eps_mean = float(report.attrs["eps_mean"])
    empty_x = 2 * np.pi * empty_y if dos_axis == "scaled" else 2 * np.pi * empty_y * eps_mean
    dos_ax.plot(empty_x, empty_y, "k--", lw=0.8, label="empty lattice (ε̄)")
    window = float(empty_y[-1])  # the SIB-CL DOS covers ω√ε̄a/2πc up to about 0.96
    dos_ax.axhline(window, color="0.5", lw=0.8, ls=":")
    dos_ax.text(0.03, window, " DOS window ends", transform=dos_ax.get_yaxis_transform(), va="bottom", fontsize=8,
                color="0.4")
    ticks = np.atleast_1d(report.attrs["tick_positions"])
    band_ax.set_xticks(ticks, report.attrs["tick_labels"].split(","))
    for tick in ticks:
        band_ax.axvline(tick, color="0.8", lw=0.8)
    band_ax.set_xlim(distance[0], distance[-1])
    band_ax.set_ylim(0, top * 1.03)
    label = "ω√ε̄ a / 2πc" if dos_axis == "scaled" else "ω a / 2πc"
    band_ax.set_ylabel(f"frequency {label}")
    band_ax.set_xlabel("wave vector along " + "–".join(report.attrs["tick_labels"].split(",")))
    band_ax.set_title("bands (" + ", ".join(p.upper() for p in pols) + "; shaded: complete gaps)")
    dos_ax.set_xlabel("DOS / √ε̄ (per unit ω√ε̄a/2πc)" if dos_axis == "scaled" else "DOS (per unit ωa/2πc)")
    dos_ax.set_xlim(left=0)
    dos_ax.tick_params(labelleft=False)
    dos_ax.set_title("density of states")
    dos_ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title or "photossl bands")
    fig.tight_layout()
    return fig


def write_band_report(report: xr.Dataset, out_dir: Path, title: str = "", dos_axis: str = "omega") -> list[Path]:
    """Write bands.png, bands.nc and bands.csv (path bands) atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    figure = plot_band_report(report, title, dos_axis)
    png, netcdf, csv = out_dir / "bands.png", out_dir / "bands.nc", out_dir / "bands.csv"
    replace_atomically(png, lambda tmp: figure.savefig(tmp, dpi=120, format="png"))
    import matplotlib.pyplot as plt

    plt.close(figure)
    replace_atomically(netcdf, lambda tmp: report.to_netcdf(tmp, engine="h5netcdf"))

    def write_csv(tmp):
        columns = ["k_x", "k_y", "distance"]
        table = [report[c].values for c in columns]
        for name in report.data_vars:
            if name.startswith("bands_"):
                for b in report["band"].values:
                    columns.append(f"{name}_{b}")
                    table.append(report[name].sel(band=b).values)
        np.savetxt(tmp, np.stack(table, axis=1), delimiter=",", header=",".join(columns), comments="")

    replace_atomically(csv, write_csv)
    return [png, netcdf, csv]
