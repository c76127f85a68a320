"""Apply a fine-tuned surrogate to new cells and write the predictions as NetCDF.

Inputs hold raw permittivity maps: a photossl dataset folder or NetCDF file (variable ``eps``), a ``.npy`` array
(N, N) or (B, N, N), or an HDF5 file with a 2-D or 3-D dataset ``eps`` (or ``--key``), or SIB-CL's layout
(``unitcell/mpbepsimage/<i>``, one dataset per cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from photossl.errors import PhotosslError
from photossl.files import replace_atomically
from photossl.finetune.targets import TargetInfo, with_dos

SIBCL_EPS_GROUP = "unitcell/mpbepsimage"


@dataclass
class FinetunedModel:
    """A fine-tuned network or classical baseline loaded from FT; :meth:`predict` maps raw ε to target values.

    ``network``: the :class:`~photossl.finetune.trainer.Regressor` (eval mode) or None for a classical model;
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

    @property
    def encoder(self) -> torch.nn.Module | None:
        return None if self.network is None else self.network.encoder

    @torch.no_grad()
    def predict(self, eps: Any, batch_size: int = 512, device: torch.device | str | None = None) -> np.ndarray:
        """Predictions in target units (float64). Shape: raw ε (B, N, N) or (B, 1, N, N) -> (B, *target shape)."""
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


def load_finetuned(path: str | Path, map_location: str | torch.device = "cpu") -> FinetunedModel:
    """The model of a fine-tuning run folder FT (``model.pt`` or ``model.npz``), or of such a file.

    Neither format can run code when loaded (``torch.load(weights_only=True)``, ``np.load(allow_pickle=False)``); a
    pickled ``model.pkl`` of earlier versions is refused with the command that refits it.
    """
    from photossl.finetune.baselines import CLASSICAL_FILE, LEGACY_CLASSICAL_FILE, ClassicalModel, refit_command
    from photossl.finetune.trainer import MODEL_FILE, MODEL_FORMAT, Regressor, build_head, output_permutation

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    network_file = path / MODEL_FILE if path.is_dir() else path
    classical_file = path / CLASSICAL_FILE if path.is_dir() else path
    if network_file.suffix == ".pt" and network_file.exists():
        try:
            payload = torch.load(network_file, map_location=map_location, weights_only=True)
        except Exception as err:  # a truncated or foreign file, in one line
            first_line = str(err).splitlines()[0] if str(err) else ""
            raise PhotosslError(f"cannot read {network_file}: {type(err).__name__}: {first_line}") from None
        if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
            raise PhotosslError(f"{network_file} is not a photossl fine-tuned model")
        from photossl.models import build_encoder

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


# ------------------------------------------------------------------------------------------------------ inputs
def _read_h5(path: Path, key: str | None) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as handle:
        if key is None and SIBCL_EPS_GROUP in handle and isinstance(handle[SIBCL_EPS_GROUP], h5py.Group):
            group = handle[SIBCL_EPS_GROUP]
            names = sorted(group, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
            return np.stack([group[name][()] for name in names])
        if key is None:
            key = "eps" if "eps" in handle else None
        if key is None:
            found = []
            handle.visititems(lambda name, obj: found.append(name) if getattr(obj, "ndim", 0) in (2, 3) else None)
            if len(found) != 1:
                raise PhotosslError(f"{path}: name the permittivity dataset with --key (found {len(found)} arrays)")
            key = found[0]
        if key not in handle:
            raise PhotosslError(f"{path}: no dataset '{key}'")
        return handle[key][()]


def read_cells(source: str | Path, key: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(raw ε (B, N, N) float64, cell ids (B,)) from a dataset folder, .nc, .npy or .h5/.hdf5 file."""
    path = Path(source)
    if not path.exists():
        raise PhotosslError(f"input not found: {path}")
    try:
        if path.is_dir() or path.suffix.lower() == ".nc":
            from photossl.data.loaders import open_cells

            dataset = open_cells(path, ["eps"])
            try:
                eps = np.asarray(dataset["eps"].values, dtype=np.float64)
                ids = dataset["cell"].values if "cell" in dataset.coords else np.arange(eps.shape[0])
            finally:
                dataset.close()
        elif path.suffix.lower() == ".npy":
            eps = np.load(path, allow_pickle=False)
            ids = None
        elif path.suffix.lower() in (".h5", ".hdf5"):
            eps = _read_h5(path, key)
            ids = None
        else:
            raise PhotosslError(f"{path}: unsupported input '{path.suffix}' (use a dataset folder, .nc, .npy or .h5)")
    except PhotosslError:
        raise
    except (OSError, ValueError, KeyError) as err:
        raise PhotosslError(f"cannot read {path}: {err}") from None
    eps = np.asarray(eps, dtype=np.float64)
    if eps.ndim == 2:
        eps = eps[None]
    if eps.ndim == 4 and eps.shape[1] == 1:
        eps = eps[:, 0]
    if eps.ndim != 3 or eps.shape[1] != eps.shape[2]:
        raise PhotosslError(f"{path}: permittivity must be (N, N) or (B, N, N), got shape {eps.shape}")
    ids = np.arange(eps.shape[0]) if ids is None else np.asarray(ids)
    return eps, ids


# ----------------------------------------------------------------------------------------------------- outputs
def predictions_dataset(model: FinetunedModel, pred: np.ndarray, cell_ids: np.ndarray, source: str = "") -> xr.Dataset:
    """Predictions (B, *shape) as a Dataset on dims ('cell', *target dims), with the target's coordinates."""
    info = model.target
    dims = ("cell", *info.dims)
    coords: dict[str, Any] = {"cell": ("cell", np.asarray(cell_ids))}
    for name, values in info.coords.items():
        if name in ("k_x", "k_y"):
            coords[name] = ("k", np.asarray(values))
        elif name in info.dims:
            coords[name] = (name, np.asarray(values))
    data = {}
    for name, values in with_dos(info, pred).items():
        long_name = {"dos": "predicted DOS / sqrt(eps_mean) (SIB-CL DOSn)",
                     "dos_eldiff": "predicted DOS / sqrt(eps_mean) - 2 pi freq",
                     "gaps": "predicted gap table (lower edge, upper edge, gap-to-midgap ratio) per band pair",
                     "bands": "predicted band frequencies on the k-grid"}[name]
        data[name] = (dims, values.astype(np.float32), {"long_name": long_name})
    attrs = {
        "model": str(model.path),
        "method": model.method,
        "kind": model.kind,
        "target": info.name,
        "target_variable": info.variable,
        "source": str(source),
        "units": "frequencies omega a / (2 pi c); DOS per unit scaled frequency freq = omega sqrt(eps_mean) a/(2 pi c)",
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def predict_to_netcdf(model_path: str | Path, source: str | Path, out: str | Path, key: str | None = None,
                      batch_size: int = 512, device: str | None = None) -> xr.Dataset:
    """Predict every cell of ``source`` with the model of ``model_path`` and write NetCDF ``out``; returns it."""
    model = load_finetuned(model_path)
    eps, ids = read_cells(source, key)
    pred = model.predict(eps, batch_size=batch_size, device=device)
    dataset = predictions_dataset(model, pred, ids, str(source))
    replace_atomically(out, lambda tmp: dataset.to_netcdf(tmp, engine="h5netcdf"))
    return dataset
