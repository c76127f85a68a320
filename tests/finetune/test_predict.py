"""``photossl predict``: a fine-tuned network or classical baseline on a dataset folder, .npy and .h5 inputs."""

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.data.loaders import load_arrays
from photossl.finetune import finetune, load_finetuned, make_finetune_config


@pytest.fixture(scope="module")
def models(tiny_data, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    root = tmp_path_factory.mktemp("predict-models")
    base = {"data": str(tiny_data), "budget": 20, "epochs": 1, "head_dims": [16], "progress": False, "threads": 1}
    finetune(make_finetune_config(base), root / "dos")
    finetune(make_finetune_config({**base, "target": "gaps"}), root / "gaps")
    finetune(make_finetune_config({**base, "baseline": "kernel-ridge"}), root / "kernel")
    torch.set_num_threads(threads)
    return root


def _predict(model, source, out, *extra):
    result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--data", str(source), "--out", str(out),
                                      *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return xr.load_dataset(out, engine="h5netcdf")


def test_predicts_a_dataset_folder_with_the_dos_and_its_difference(models, tiny_data, tmp_path):
    pred = _predict(models / "dos", tiny_data, tmp_path / "p.nc")
    assert pred["dos"].dims == ("cell", "freq") and pred.sizes == {"cell": 96, "freq": 400}
    assert np.allclose(pred["dos"] - pred["dos_eldiff"], 2 * np.pi * pred["freq"], atol=1e-5)
    eps, _ = load_arrays(tiny_data, None, np.arange(96), normalise=False)
    direct = load_finetuned(models / "dos").predict(eps)
    assert np.allclose(pred["dos_eldiff"].values, direct, atol=1e-5)
    assert pred.attrs["method"] == "supervised" and pred.attrs["target"] == "dos_eldiff"


def test_npy_and_h5_inputs_give_the_same_predictions(models, tiny_data, tmp_path):
    eps, _ = load_arrays(tiny_data, None, np.arange(5), normalise=False)
    eps = eps[:, 0].numpy()
    np.save(tmp_path / "cells.npy", eps)
    np.save(tmp_path / "one.npy", eps[0])
    with h5py.File(tmp_path / "cells.h5", "w") as handle:
        handle["eps"] = eps
    with h5py.File(tmp_path / "sibcl.h5", "w") as handle:  # SIB-CL's layout: one dataset per cell, 1-based
        for i, cell in enumerate(eps):
            handle[f"unitcell/mpbepsimage/{i + 1}"] = cell
    reference = _predict(models / "gaps", tmp_path / "cells.npy", tmp_path / "a.nc")
    assert reference["gaps"].dims == ("cell", "band_pair", "gap_field") and reference.sizes["cell"] == 5
    assert list(reference["gap_field"].values) == ["lower_edge", "upper_edge", "gap_to_midgap"]
    for name in ("cells.h5", "sibcl.h5"):
        other = _predict(models / "gaps", tmp_path / name, tmp_path / f"{name}.nc")
        assert np.allclose(other["gaps"], reference["gaps"]), name
    single = _predict(models / "gaps", tmp_path / "one.npy", tmp_path / "one.nc")
    assert single.sizes["cell"] == 1 and np.allclose(single["gaps"][0], reference["gaps"][0])


def test_classical_baseline_predicts(models, tiny_data, tmp_path):
    eps, _ = load_arrays(tiny_data, None, np.arange(7), normalise=False)
    np.save(tmp_path / "cells.npy", eps.numpy())  # (B, 1, N, N) is accepted too
    pred = _predict(models / "kernel", tmp_path / "cells.npy", tmp_path / "k.nc")
    assert pred.attrs["kind"] == "classical" and pred["dos"].shape == (7, 400)
    assert np.allclose(pred["dos_eldiff"], load_finetuned(models / "kernel").predict(eps.numpy()), atol=1e-5)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: np.save(p / "x.npy", np.ones((2, 32, 32))), "trained on 16x16 cells"),
    (lambda p: np.save(p / "x.npy", np.zeros((2, 16, 16))), "must be finite and > 0"),
    (lambda p: np.save(p / "x.npy", np.ones((2, 16, 8))), "must be (N, N) or (B, N, N)"),
    (lambda p: (p / "x.txt").write_text("1"), "unsupported input"),
    (lambda p: np.save(p / "x.npy", np.array([["1.5", "2"], ["3", "4"]])), "holds text"),
    (lambda p: np.save(p / "x.npy", np.ones((2, 16, 16)) * (4 + 0.1j)), "is complex"),
])
def test_bad_inputs_are_one_line_errors(models, tmp_path, make, fragment, one_line_error):
    make(tmp_path)
    source = next(tmp_path.glob("x.*"))
    result = CliRunner().invoke(cli, ["predict", "--model", str(models / "dos"), "--data", str(source),
                                      "--out", str(tmp_path / "p.nc")])
    one_line_error(result, fragment)
    assert not (tmp_path / "p.nc").exists()


def test_not_a_model_folder(tmp_path, tiny_data, one_line_error):
    result = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path), "--data", str(tiny_data),
                                      "--out", str(tmp_path / "p.nc")])
    one_line_error(result, "no fine-tuned model")


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"", lambda b: b"not a model\n" * 40])
def test_a_damaged_model_file_is_one_line_naming_the_fix(models, tmp_path, tiny_data, damage, one_line_error):
    import shutil

    copy = tmp_path / "ft"
    shutil.copytree(models / "dos", copy)
    (copy / "model.pt").write_bytes(damage((copy / "model.pt").read_bytes()))
    result = CliRunner().invoke(cli, ["predict", "--model", str(copy), "--data", str(tiny_data),
                                      "--out", str(tmp_path / "p.nc")])
    one_line_error(result, "model.pt is not a readable photossl fine-tuned model", "photossl finetune")
    assert not (tmp_path / "p.nc").exists()


def test_eps_outside_the_training_range_is_one_warning_line(models, tmp_path):
    np.save(tmp_path / "far.npy", np.full((2, 16, 16), 60.0))
    result = CliRunner().invoke(cli, ["predict", "--model", str(models / "dos"), "--data", str(tmp_path / "far.npy"),
                                      "--out", str(tmp_path / "p.nc")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "ε spans 60-60" in warnings[0] and "trained on ε in" in warnings[0], result.output
    with pytest.warns(UserWarning, match="extrapolations"):
        load_finetuned(models / "dos").predict(np.full((1, 16, 16), 60.0))


def test_a_labelled_input_gets_the_physical_dos_provenance_and_its_error(models, tiny_data, tmp_path):
    from photossl.finetune.targets import score

    pred = _predict(models / "dos", tiny_data, tmp_path / "p.nc")
    eps, _ = load_arrays(tiny_data, None, np.arange(96), normalise=False)
    eps_mean = eps.double().mean(dim=(1, 2, 3)).numpy()
    assert np.allclose(pred["eps_mean"], eps_mean)
    root = np.sqrt(eps_mean)[:, None]
    assert np.allclose(pred["omega"], pred["freq"].values[None] / root, rtol=1e-6)
    assert np.allclose(pred["dos_physical"], pred["dos"].values * root, rtol=1e-5)
    model = load_finetuned(models / "dos")
    physical = model.predict_dos(eps[:3].numpy())
    assert np.allclose(physical["dos"], pred["dos_physical"][:3], rtol=1e-4)
    _, truth = load_arrays(tiny_data, model.target.variable, np.arange(96))
    expected = score(model.target, pred["dos_eldiff"].values, truth.numpy())
    assert np.isclose(pred.attrs["error_dos_rel_l1"], expected["dos_rel_l1"], rtol=1e-4)
    assert pred["error"].dims == ("cell",) and np.isclose(float(pred["error"].mean()), expected["dos_rel_l1"],
                                                            rtol=1e-4)
    assert pred.attrs["version_photossl"] and pred.attrs["created"] and pred.attrs["model"] == str(models / "dos")
    unlabelled = tmp_path / "cells.npy"
    np.save(unlabelled, eps[:4, 0].numpy())
    assert "error" not in _predict(models / "dos", unlabelled, tmp_path / "q.nc")
