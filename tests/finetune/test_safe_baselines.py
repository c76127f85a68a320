"""Classical baselines are stored as arrays (``model.npz``) and predict in numpy exactly as the fitted scikit-learn
model does; nothing photossl loads for them is unpickled, and an old pickled ``model.pkl`` is refused in one line."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from photossl.cli.main import cli
from photossl.errors import PhotosslError
from photossl.finetune import finetune, load_finetuned, make_finetune_config
from photossl.finetune.baselines import ClassicalModel, classical_features

TARGET = {"name": "gaps", "variable": "gaps_tm", "shape": [3, 2], "dims": ["a", "b"], "attrs": {}, "coords": {},
          "offset": None, "kpoints": None}


@pytest.mark.parametrize("kind", ["ridge", "kernel-ridge"])
def test_numpy_predictions_equal_the_fitted_sklearn_model(tmp_path, kind):
    rng = np.random.default_rng(0)
    eps = rng.uniform(1, 20, (40, 16, 16))
    features = classical_features(eps)
    y = rng.normal(size=(40, 6)) + features[:, :6] * 3.0
    scaler = StandardScaler().fit(features[:30])
    regressor = (Ridge(alpha=0.3, fit_intercept=False) if kind == "ridge"
                 else KernelRidge(alpha=0.01, kernel="rbf", gamma=0.02))
    y_mean = y[:30].mean(0)
    regressor.fit(scaler.transform(features[:30]), y[:30] - y_mean)
    expected = regressor.predict(scaler.transform(features[30:])) + y_mean
    model = ClassicalModel.from_sklearn(kind, scaler, regressor, y_mean, TARGET, {"alpha": 0.3}, kind)
    model.save(tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz", allow_pickle=False) as archive:  # arrays and one JSON string only
        assert all(archive[name].dtype != object for name in archive.files)
    loaded = ClassicalModel.load(tmp_path / "model.npz")
    predicted = loaded.predict(eps[30:])
    assert predicted.shape == (10, 3, 2)
    np.testing.assert_allclose(predicted.reshape(10, 6), expected, rtol=1e-10, atol=1e-10)
    assert loaded.kind == kind and loaded.method == kind and loaded.target == TARGET


@pytest.fixture(scope="module")
def kernel_run(tiny_data, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    out = tmp_path_factory.mktemp("safe-baselines") / "kernel"
    finetune(make_finetune_config({"data": str(tiny_data), "budget": 20, "baseline": "kernel-ridge",
                                   "progress": False, "threads": 1}), out)
    torch.set_num_threads(threads)
    return out


def test_predict_reads_the_baseline_without_unpickling(kernel_run, tiny_data, tmp_path, monkeypatch):
    assert (kernel_run / "model.npz").exists() and not (kernel_run / "model.pkl").exists()

    def forbidden(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    result = CliRunner().invoke(cli, ["predict", "--model", str(kernel_run), "--data", str(tiny_data),
                                      "--out", str(tmp_path / "p.nc")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert (tmp_path / "p.nc").exists()


class _Payload:
    """Unpickling this creates the marker file: what a hostile model.pkl could do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_an_old_pickled_baseline_is_refused_in_one_line(kernel_run, tiny_data, tmp_path, one_line_error):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text((kernel_run / "config.yaml").read_text())
    marker = tmp_path / "marker"
    (old / "model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    for model in (old, old / "model.pkl"):
        result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--data", str(tiny_data),
                                          "--out", str(tmp_path / "p.nc")])
        one_line_error(result, f"{old / 'model.pkl'} is a pickled baseline", "unpickling can run code",
                       f"photossl finetune --config {old / 'config.yaml'} --baseline kernel-ridge --out {old}")
    with pytest.raises(PhotosslError, match="no longer loads"):
        load_finetuned(old)
    from photossl.study.encoders import load_encoder

    with pytest.raises(PhotosslError, match="no longer loads"):
        load_encoder(old / "model.pkl")
    assert not marker.exists() and not (tmp_path / "p.nc").exists()
    (old / "config.yaml").unlink()  # without a config, the command names what to fill in
    with pytest.raises(PhotosslError, match="--data DATA --baseline ridge --budget N"):
        load_finetuned(old)


def test_the_refit_command_reproduces_the_run(kernel_run, tmp_path):
    from photossl.finetune.baselines import refit_command

    out = tmp_path / "refit"
    out.mkdir()
    (out / "config.yaml").write_text((kernel_run / "config.yaml").read_text())
    command = refit_command(out).split()[1:]
    assert command[:3] == ["finetune", "--config", str(out / "config.yaml")]
    result = CliRunner().invoke(cli, command + ["--no-progress"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    eps = np.random.default_rng(1).uniform(1, 20, (4, 16, 16))
    np.testing.assert_allclose(load_finetuned(out).predict(eps), load_finetuned(kernel_run).predict(eps), rtol=1e-12)


def test_a_damaged_npz_is_one_line(tmp_path):
    (tmp_path / "model.npz").write_bytes(b"not a zip")
    with pytest.raises(PhotosslError, match="not a readable photossl classical baseline.*refit it: photossl finetune"):
        load_finetuned(tmp_path)
    arrays = {"meta": np.array(["x"], dtype=object)}  # an object array would need pickle: refused by np.load
    with open(tmp_path / "model.npz", "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.raises(PhotosslError, match="not a readable"):
        load_finetuned(tmp_path)
