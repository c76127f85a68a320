"""Band diagram + DOS of one cell as an xarray Dataset, and its figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

import photossl
from photossl.files import replace_atomically
from photossl.physics.gaps import band_gaps
from photossl.physics.kpoints import gxmg_path
from photossl.physics.labels import DEFAULT_SOLVER_OPTIONS, label_cell
from photossl.physics.solver import solve_bands


def compute_band_report(
    eps: np.ndarray,
    polarizations: tuple[str, ...] = ("tm", "te"),
    n_bands: int = 10,
    points_per_segment: int = 24,
    grid_size: int = 25,
    cutoff: float = 6.0,
) -> xr.Dataset:
    """Bands along Gamma-X-M-Gamma, the SIB-CL DOS and the gaps for each polarization, in one Dataset."""
    path = gxmg_path(points_per_segment)
    options = dict(DEFAULT_SOLVER_OPTIONS, cutoff=cutoff)
    data_vars = {"eps": (("x", "y"), eps, {"long_name": "relative permittivity"})}
    gap_rows = []
    freq_axis = None
    for pol in polarizations:
        path_bands = solve_bands(eps, path.kpoints, pol, n_bands, cutoff=cutoff)
        labels = label_cell(eps, pol, n_bands, grid_size, solver_options=options)
        freq_axis = labels.dos.freq
        data_vars[f"bands_{pol}"] = (("path", "band"), path_bands, {"units": "omega a / 2 pi c"})
        data_vars[f"dos_{pol}"] = (("freq",), labels.dos.dos_normalized,
                                   {"long_name": "DOS / sqrt(mean eps) vs omega sqrt(mean eps) (SIB-CL)"})
        data_vars[f"dos_eldiff_{pol}"] = (("freq",), labels.dos.eldiff,
                                          {"long_name": "DOS / sqrt(mean eps) - 2 pi omega (SIB-CL target)"})
        for gap in band_gaps(labels.frequencies, min_ratio=1e-3):
            gap_rows.append((pol, gap.lower_band, gap.lower_edge, gap.upper_edge, gap.gap_to_midgap))
    coords = {
        "path": np.arange(len(path.kpoints)),
        "k_x": ("path", path.kpoints[:, 0]),
        "k_y": ("path", path.kpoints[:, 1]),
        "distance": ("path", path.distance),
        "band": np.arange(1, n_bands + 1),
        "freq": ("freq", freq_axis, {"units": "omega sqrt(mean eps) a / 2 pi c"}),
    }
    attrs = {
        "photossl_version": photossl.__version__,
        "solver": "pwe",
        "cutoff": cutoff,
        "grid_size": grid_size,
        "eps_mean": float(eps.mean()),
        "tick_positions": path.tick_positions,
        "tick_labels": ",".join(path.tick_labels),
        "gaps": "; ".join(f"{p} {b}-{b + 1}: {lo:.5f}-{hi:.5f} ({r:.2%})" for p, b, lo, hi, r in gap_rows) or "none",
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def plot_band_report(report: xr.Dataset, title: str = ""):
    """Figure: the cell, the band diagram per polarization, and the DOS."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pols = [name.split("_")[1] for name in report.data_vars if name.startswith("bands_")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1.6, 1]})
    image = axes[0].imshow(report["eps"].values.T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
    axes[0].set_xlabel("x / a")
    axes[0].set_ylabel("y / a")
    fig.colorbar(image, ax=axes[0], fraction=0.046, label="ε")
    colours = {"tm": "tab:blue", "te": "tab:red"}
    distance = report["distance"].values
    for pol in pols:
        bands = report[f"bands_{pol}"].values
        for b in range(bands.shape[1]):
            axes[1].plot(distance, bands[:, b], color=colours[pol], lw=1.2, label=pol.upper() if b == 0 else None)
        axes[2].plot(report["freq"].values, report[f"dos_{pol}"].values, color=colours[pol], label=pol.upper())
    ticks = np.atleast_1d(report.attrs["tick_positions"])
    axes[1].set_xticks(ticks, report.attrs["tick_labels"].split(","))
    for tick in ticks:
        axes[1].axvline(tick, color="0.8", lw=0.8)
    axes[1].set_xlim(distance[0], distance[-1])
    axes[1].set_ylabel("ωa / 2πc")
    axes[1].legend(loc="upper left")
    axes[2].plot(report["freq"].values, 2 * np.pi * report["freq"].values, "k--", lw=0.8, label="empty lattice")
    axes[2].set_xlabel("ω √ε̄ a / 2πc")
    axes[2].set_ylabel("DOS / √ε̄")
    axes[2].legend(loc="upper left")
    fig.suptitle(title or "photossl bands")
    fig.tight_layout()
    return fig


def write_band_report(report: xr.Dataset, out_dir: Path, title: str = "") -> list[Path]:
    """Write bands.png, bands.nc and bands.csv (path bands) atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    figure = plot_band_report(report, title)
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
