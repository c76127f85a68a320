"""Apply a fine-tuned surrogate to new cells and write the predictions as NetCDF.

Inputs hold raw permittivity maps, read by :func:`photossl.data.eps_files.read_cells`: a photossl dataset folder or
NetCDF file (variable ``eps``), a ``.npy`` / ``.npz`` array (N, N) or (B, N, N), or an HDF5 file with a 2-D or 3-D
dataset ``eps`` (or ``--key``), or SIB-CL's layout (``unitcell/mpbepsimage/<i>``, one dataset per cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from photossl.data.eps_files import read_cells  # noqa: F401 - the inputs' reader, re-exported where it lived
from photossl.errors import PhotosslError
from photossl.files import load_torch_file, replace_atomically
from photossl.finetune.baselines import CLASSICAL_FILE, LEGACY_CLASSICAL_FILE, ClassicalModel, refit_command
from photossl.finetune.network import Regressor, build_head, output_permutation
from photossl.finetune.outputs import MODEL_FILE, MODEL_FORMAT
from photossl.finetune.targets import TargetInfo, with_dos
from photossl.models import build_encoder


@dataclass
class FinetunedModel:
    """A fine-tuned network or classical baseline loaded from FT; :meth:`predict` maps raw ε to target values.

    ``network``: the :class:`~photossl.finetune.network.Regressor` (eval mode) or None for a classical model;
    ``encoder``: its encoder (for diagnostics and embedding plots).
    """

    path: Path
    kind: str
    method: str
    target: TargetInfo
    config: dict
    network: torch.nn.Module | None = None
    classical: Any = None
    mean: torch.Tensor | None = None
    scale: float = 1.0
    normalisation: tuple[float, float] = (1.0, 19.0)
    image_size: int | None = None
    eps_range: tuple[float, float] | None = None

    @property
    def encoder(self) -> torch.nn.Module | None:
        return None if self.network is None else self.network.encoder

    @property
    def trained_eps_range(self) -> tuple[float, float]:
        """(min, max) ε of the cells the model was trained on (the input normalisation's range for older models)."""
        if self.eps_range is not None:
            return self.eps_range
        offset, width = self.normalisation
        return offset, offset + width

    def eps_range_warning(self, eps: Any) -> str | None:
        """One line when ``eps`` reaches more than 10 % of the training range's width outside it, else None."""
        values = np.asarray(eps.detach().cpu() if isinstance(eps, torch.Tensor) else eps)
        if values.size == 0 or values.dtype.kind not in "fiu":
            return None
        low, high = self.trained_eps_range
        slack = 0.1 * max(high - low, 1e-12)
        lo, hi = float(values.min()), float(values.max())
        if lo >= low - slack and hi <= high + slack:
            return None
        return (f"ε spans {lo:.3g}-{hi:.3g} but the model was trained on ε in {low:.3g}-{high:.3g}; predictions "
                "outside that range are extrapolations")

    @torch.no_grad()
    def predict(self, eps: Any, batch_size: int = 512, device: torch.device | str | None = None,
                warn: bool = True) -> np.ndarray:
        """The model's target for each cell, float64, shape raw ε (B, N, N) or (B, 1, N, N) -> (B, *target shape).

        What the values are depends on ``self.target.name``: 'dos_eldiff' (the default target) gives SIB-CL's
        DOS / √ε̄ − 2π·freq on the scaled axis ``self.target.coords['freq']`` = ω√ε̄a/2πc (add
        ``self.target.offset`` for DOS / √ε̄, or call :meth:`predict_dos` for the DOS in physical units); 'dos'
        gives DOS / √ε̄ on that axis; 'gaps' (n_bands − 1, 3) lower edge, upper edge (ωa/2πc) and gap-to-midgap
        ratio per band pair; 'bands' (K, n_bands) frequencies ωa/2πc on the k-grid ``self.target.kpoints``.
        ``eps`` is raw relative permittivity (not normalised images); with ``warn`` a cell outside the training ε
        range gives a :class:`UserWarning` (:meth:`eps_range_warning`).
        """
        if not isinstance(eps, torch.Tensor):
            from photossl.physics.cells import check_eps_dtype

            eps = check_eps_dtype(np.asarray(eps))
        elif eps.is_complex():
            raise PhotosslError("permittivity is complex: the models take lossless, real ε")
        x = torch.as_tensor(np.asarray(eps.detach().cpu() if isinstance(eps, torch.Tensor) else eps))
        if x.dim() == 3:
            x = x[:, None]
        if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
            raise PhotosslError(f"permittivity maps must be (B, N, N) or (B, 1, N, N), got {tuple(x.shape)}")
        if not torch.isfinite(x).all() or (x <= 0).any():
            raise PhotosslError("permittivity maps must be finite and > 0 (pass raw ε, not normalised images)")
        if self.image_size is not None and x.shape[-1] != self.image_size:
            raise PhotosslError(f"the model was trained on {self.image_size}x{self.image_size} cells, got "
                                f"{x.shape[-1]}x{x.shape[-1]}")
        if warn and (message := self.eps_range_warning(eps)) is not None:
            import warnings

            warnings.warn(message, UserWarning, stacklevel=3)
        if self.classical is not None:
            return np.asarray(self.classical.predict(x.double().numpy()), dtype=np.float64)
        offset, width = self.normalisation
        parameter = next(self.network.parameters())
        device = parameter.device if device is None else torch.device(device)
        self.network.to(device).eval()
        parts = []
        for start in range(0, x.shape[0], batch_size):
            images = ((x[start: start + batch_size].to(device, parameter.dtype)) - offset) / width
            z = self.network(images).double()
            parts.append((z * self.scale + self.mean.to(z)).cpu())
        flat = torch.cat(parts) if parts else torch.empty(0, self.target.size, dtype=torch.float64)
        return flat.numpy().reshape(-1, *self.target.shape)

    def predict_dos(self, eps: Any, batch_size: int = 512, device: torch.device | str | None = None,
                    warn: bool = True) -> xr.Dataset:
        """The predicted DOS in physical units, per cell: a Dataset on dims (cell, freq) with

        ``omega`` (cell, freq): angular frequency ωa/2πc of each bin (the scaled axis freq divided by √ε̄ of the
        cell), ``dos`` (cell, freq): states per unit ωa/2πc per unit cell and polarization (integrates to the number
        of bands over ω), ``dos_scaled`` (cell, freq): SIB-CL's DOS / √ε̄ on the scaled axis ``freq``, and
        ``eps_mean`` (cell,). Only for DOS targets ('dos_eldiff', 'dos').
        """
        if self.target.name not in ("dos", "dos_eldiff"):
            raise PhotosslError(f"the model predicts '{self.target.name}', not the DOS")
        raw = np.asarray(eps.detach().cpu() if isinstance(eps, torch.Tensor) else eps)
        pred = self.predict(raw, batch_size=batch_size, device=device, warn=warn)
        cells = raw.reshape(pred.shape[0], -1).astype(np.float64)
        return physical_dos(with_dos(self.target, pred)["dos"], self.target.coords["freq"], cells.mean(axis=1))


def physical_dos(dos_scaled: np.ndarray, freq: np.ndarray, eps_mean: np.ndarray) -> xr.Dataset:
    """SIB-CL's DOS / √ε̄ (B, F) on the scaled axis ``freq`` = ω√ε̄ a/2πc,
    as the DOS per unit ωa/2πc at ωa/2πc.

    The SIB-CL recipe relabels the axis ω -> ω√ε̄ without changing the values and then divides them by √ε̄, so
    the physical DOS is ``dos_scaled * √ε̄`` at ``ω = freq / √ε̄``.
    """
    root = np.sqrt(np.asarray(eps_mean, dtype=np.float64))[:, None]
    freq = np.asarray(freq, dtype=np.float64)
    return xr.Dataset(
        {
            "omega": (("cell", "freq"), freq[None, :] / root, {"units": "omega a / 2 pi c"}),
            "dos": (("cell", "freq"), np.asarray(dos_scaled) * root,
                    {"units": "states per unit (omega a / 2 pi c) per unit cell",
                     "long_name": "density of states vs omega"}),
            "dos_scaled": (("cell", "freq"), np.asarray(dos_scaled),
                           {"long_name": "DOS / sqrt(eps_mean) vs freq = omega sqrt(eps_mean) (SIB-CL DOSn)"}),
            "eps_mean": (("cell",), root[:, 0] ** 2, {"long_name": "mean relative permittivity of the cell"}),
        },
        coords={"freq": ("freq", freq, {"units": "omega sqrt(eps_mean) a / 2 pi c"})},
    )


def load_finetuned(path: str | Path, map_location: str | torch.device = "cpu") -> FinetunedModel:
    """The model of a fine-tuning run folder FT (``model.pt`` or ``model.npz``), or of such a file.

    Neither format can run code when loaded (``torch.load(weights_only=True)``, ``np.load(allow_pickle=False)``); a
    pickled ``model.pkl`` of earlier versions is refused with the command that refits it.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    network_file = path / MODEL_FILE if path.is_dir() else path
    classical_file = path / CLASSICAL_FILE if path.is_dir() else path
    if network_file.suffix == ".pt" and network_file.exists():
        remedy = f"rerun photossl finetune --out {folder} --overwrite to make it again"
        payload = load_torch_file(network_file, "photossl fine-tuned model", remedy, map_location, MODEL_FORMAT)
        spec, head_spec = payload["encoder"], payload["head"]
        encoder = build_encoder(spec["name"], **spec["kwargs"])
        head = build_head(head_spec["in_dim"], head_spec["out_dim"], head_spec["kind"], head_spec["dims"])
        permutation = output_permutation(encoder, TargetInfo.from_record(payload["target"]))
        network = Regressor(encoder, head, frozen=payload["config"].get("mode") == "frozen",
                            output_permutation=permutation)
        network.load_state_dict(payload["state"])
        network.to(map_location).eval()
        return FinetunedModel(
            folder, "network", payload["method"], TargetInfo.from_record(payload["target"]), payload["config"],
            network=network, mean=payload["target_mean"].double(), scale=float(payload["target_scale"]),
            normalisation=tuple(payload["normalisation"]), image_size=int(payload["image_size"]),
            eps_range=tuple(payload["eps_range"]) if payload.get("eps_range") else None,
        )
    if classical_file.suffix == ".npz" and classical_file.exists():
        model = ClassicalModel.load(classical_file)
        config = {}
        if (folder / "config.yaml").exists():
            import yaml

            config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        return FinetunedModel(folder, "classical", model.method, model.target_info, config, classical=model)
    legacy = path / LEGACY_CLASSICAL_FILE if path.is_dir() else path
    if legacy.suffix == ".pkl" and legacy.exists():
        raise PhotosslError(f"{legacy} is a pickled baseline, which photossl no longer loads because unpickling can "
                            f"run code; refit it: {refit_command(folder)}")
    raise PhotosslError(f"no fine-tuned model at {path} (expected {MODEL_FILE} or {CLASSICAL_FILE}; "
                        "make one with photossl finetune)")


# ----------------------------------------------------------------------------------------------------- outputs
def read_labels(source: str | Path, info: TargetInfo, key: str | None = None) -> np.ndarray | None:
    """The true values of target ``info`` for every cell of ``source`` (B, *info.shape), or None when the input holds
    no labels for it (a .npy or .h5 file, or a dataset without that variable or with another frequency axis)."""
    path = Path(source)
    if not (path.is_dir() or path.suffix.lower() == ".nc"):
        return None
    from photossl.data.loaders import open_cells

    try:
        dataset = open_cells(path, [info.variable])
    except PhotosslError:
        return None
    try:
        if info.variable not in dataset or tuple(dataset[info.variable].shape[1:]) != tuple(info.shape):
            return None
        if "freq" in info.coords and ("freq" not in dataset.coords or not np.allclose(
                dataset["freq"].values, info.coords["freq"])):
            return None
        return np.asarray(dataset[info.variable].values, dtype=np.float64)
    finally:
        dataset.close()


def per_cell_error(info: TargetInfo, pred: np.ndarray, true: np.ndarray) -> tuple[str, np.ndarray]:
    """(metric name, (B,) values): the target's primary metric for each cell
    (see :func:`~photossl.finetune.targets.score`)."""
    from photossl.evaluation.metrics import DOS_STOP, dos_relative_l1, mean_absolute_error, relative_l1

    if info.name in ("dos", "dos_eldiff"):
        if info.offset is not None:
            pred, true = pred + info.offset, true + info.offset
        if pred.shape[-1] >= DOS_STOP:
            return "dos_rel_l1", dos_relative_l1(pred, true, reduction="none")
        return "dos_rel_l1", relative_l1(pred, true, reduction="none")
    if info.name == "gaps":
        return "gaps_mae", mean_absolute_error(pred, true, reduction="none")
    return "bands_rel_l1", relative_l1(pred, true, reduction="none")


def predictions_dataset(model: FinetunedModel, pred: np.ndarray, cell_ids: np.ndarray, source: str = "",
                        eps: np.ndarray | None = None, labels: np.ndarray | None = None) -> xr.Dataset:
    """Predictions (B, *shape) as a Dataset on dims ('cell', *target dims), with the target's coordinates.

    A DOS target also gives the DOS itself (``dos``, DOS / √ε̄ on the scaled axis ``freq``); with ``eps``
    (B, N, N) the Dataset holds each cell's ``eps_mean`` and, for a DOS target, the DOS in physical units
    (``omega``, ``dos_physical``: see :func:`physical_dos`). With ``labels`` (B, *shape) it holds them as
    ``label_<target>`` and the per-cell error ``error`` (the target's primary metric); the attributes hold every
    metric of :func:`~photossl.finetune.targets.score` as ``error_<metric>``. Attributes record the model, the
    input, the time and the package versions.
    """
    import datetime

    from photossl.finetune.targets import score
    from photossl.provenance import software_versions

    info = model.target
    dims = ("cell", *info.dims)
    coords: dict[str, Any] = {"cell": ("cell", np.asarray(cell_ids))}
    for name, values in info.coords.items():
        if name in ("k_x", "k_y"):
            coords[name] = ("k", np.asarray(values))
        elif name in info.dims:
            coords[name] = (name, np.asarray(values))
    long_names = {"dos": "predicted DOS / sqrt(eps_mean) vs freq = omega sqrt(eps_mean) (SIB-CL DOSn)",
                  "dos_eldiff": "predicted DOS / sqrt(eps_mean) - 2 pi freq",
                  "gaps": "predicted gap table (lower edge, upper edge, gap-to-midgap ratio) per band pair",
                  "bands": "predicted band frequencies on the k-grid"}
    data = {}
    named = with_dos(info, pred)
    for name, values in named.items():
        data[name] = (dims, values.astype(np.float32), {"long_name": long_names[name]})
    if eps is not None:
        eps_mean = np.asarray(eps, dtype=np.float64).reshape(len(pred), -1).mean(axis=1)
        data["eps_mean"] = (("cell",), eps_mean, {"long_name": "mean relative permittivity of the cell"})
        if "dos" in named:
            physical = physical_dos(named["dos"], info.coords["freq"], eps_mean)
            data["omega"] = (("cell", "freq"), physical["omega"].values.astype(np.float32), physical["omega"].attrs)
            data["dos_physical"] = (("cell", "freq"), physical["dos"].values.astype(np.float32),
                                    physical["dos"].attrs)
    metrics: dict[str, float] = {}
    if labels is not None:
        data[f"label_{info.name}"] = (dims, labels.astype(np.float32), {"long_name": f"true {info.name} of the input"})
        metric, per_cell = per_cell_error(info, pred, labels)
        data["error"] = (("cell",), np.asarray(per_cell, dtype=np.float64), {"long_name": f"{metric} per cell"})
        metrics = score(info, pred, labels)
    software = software_versions("scikit-learn")
    attrs = {
        "model": str(model.path),
        "method": model.method,
        "kind": model.kind,
        "target": info.name,
        "target_variable": info.variable,
        "source": str(source),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **{f"version_{name}": value for name, value in software.items()},
        "trained_eps_range": list(model.trained_eps_range),
        **{f"error_{name}": float(value) for name, value in metrics.items()},
        "units": "frequencies omega a / (2 pi c); dos per unit scaled frequency freq = omega sqrt(eps_mean) "
                 "a/(2 pi c); dos_physical per unit omega a / (2 pi c) at omega",
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def predict_to_netcdf(model_path: str | Path, source: str | Path, out: str | Path, key: str | None = None,
                      batch_size: int = 512, device: str | None = None, on_warning=None) -> xr.Dataset:
    """Predict every cell of ``source`` with the model of ``model_path`` and write NetCDF ``out``; returns it.

    A dataset input that holds the model's target gets the error against it (:func:`predictions_dataset`). Cells
    outside the training ε range call ``on_warning(message)`` (default: :func:`warnings.warn`).
    """
    model = load_finetuned(model_path)
    eps, ids = read_cells(source, key)
    pred = model.predict(eps, batch_size=batch_size, device=device, warn=False)
    message = model.eps_range_warning(eps)
    if message is not None:
        if on_warning is None:
            import warnings

            warnings.warn(message, UserWarning, stacklevel=2)
        else:
            on_warning(message)
    labels = read_labels(source, model.target, key)
    dataset = predictions_dataset(model, pred, ids, str(source), eps=eps, labels=labels)
    replace_atomically(out, lambda tmp: dataset.to_netcdf(tmp, engine="h5netcdf"))
    return dataset
