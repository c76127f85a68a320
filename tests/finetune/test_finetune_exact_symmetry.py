"""Fine-tuning with ``exact_symmetry``: invariant DOS, equivariant bands (k-points permute), pretrained runs, CLI."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from photossl.cli.main import cli
from photossl.data import open_dataset
from photossl.errors import PhotosslError
from photossl.finetune import finetune, load_finetuned, make_finetune_config
from photossl.models import ExactSymmetryEncoder
from photossl.symmetry import D4, kpoint_permutation_table

TOL = 1e-5
BASE = {"budget": 16, "epochs": 1, "head_dims": [16], "progress": False, "threads": 1, "batch_size": 8,
        "exact_symmetry": True}


@pytest.fixture(scope="module")
def cells(tiny_data):
    dataset = open_dataset(tiny_data)
    try:
        return torch.as_tensor(np.asarray(dataset["eps"].values[:6], dtype=np.float64))
    finally:
        dataset.close()


def _relative(a, b):
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    return float((np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)).max())


def _standardised(model, eps):
    """Predictions minus the (orbit-averaged, hence invariant) target mean, over the target scale: the network's own
    output, so that errors are relative to what the network adds to the mean."""
    y = model.predict(eps)
    return (y - model.mean.numpy().reshape(model.target.shape)) / model.scale


def _moved(eps, label, roll):
    return torch.roll(D4().apply(eps, label), roll, (-2, -1))


def test_band_predictions_are_exactly_equivariant(tiny_data, tmp_path, cells):
    """y(g·ε) = P_g y(ε) for every D4 element g with any roll, P_g the k-point permutation of the 'bands' target."""
    ft = tmp_path / "bands"
    record = finetune(make_finetune_config({**BASE, "data": str(tiny_data), "target": "bands"}), ft)
    assert np.isfinite(record["bands_rel_l1"])
    model = load_finetuned(ft)
    assert isinstance(model.encoder, ExactSymmetryEncoder)
    assert model.network.output_permutation is not None
    table = kpoint_permutation_table(model.target.kpoints).numpy()
    mean = model.mean.numpy().reshape(model.target.shape)
    assert np.allclose(mean[table[1]], mean)  # the target mean was averaged over the orbit
    y = _standardised(model, cells)  # (B, K, n_bands)
    assert y.shape[1:] == model.target.shape
    for label in range(8):
        expected = y[:, table[label], :]
        for roll in [(0, 0), (1, 0), (3, 7)]:
            assert _relative(_standardised(model, _moved(cells, label, roll)), expected) <= TOL
    # Not merely invariant: a quarter turn permutes the predicted bands (after one epoch the cell-dependent part of
    # the output is still small, but far above the rounding level that the checks above allow).
    assert min(_relative(y[:, table[label], :], y) for label in range(1, 8)) > 100 * TOL


def test_dos_predictions_are_exactly_invariant(tiny_data, tmp_path, cells):
    ft = tmp_path / "dos"
    finetune(make_finetune_config({**BASE, "data": str(tiny_data)}), ft)
    model = load_finetuned(ft)
    assert isinstance(model.encoder, ExactSymmetryEncoder) and model.network.output_permutation is None
    y = _standardised(model, cells)
    for label in range(8):
        assert _relative(_standardised(model, _moved(cells, label, (label, 2 * label + 1))), y) <= TOL


def test_pretrained_runs_carry_the_option(tiny_data, tiny_run, tmp_path, cells):
    """A plain pretrained encoder gains the wrapper on request; a run pretrained with it keeps it."""
    from photossl.training import load_pretrained, make_config, pretrain

    ft = tmp_path / "from-plain"
    finetune(make_finetune_config({**BASE, "data": str(tiny_data), "pretrained": str(tiny_run)}), ft)
    assert isinstance(load_finetuned(ft).encoder, ExactSymmetryEncoder)

    run = tmp_path / "exact-run"
    pretrain(make_config({"data": str(tiny_data), "method": "care", "epochs": 1, "batch_size": 32,
                          "limit_samples": 32, "probe_every": 0, "progress": False, "threads": 1,
                          "exact_symmetry": True}), run)
    encoder, config = load_pretrained(run)
    assert config.exact_symmetry and isinstance(encoder, ExactSymmetryEncoder)
    ft = tmp_path / "from-exact"
    finetune(make_finetune_config({**BASE, "data": str(tiny_data), "pretrained": str(run), "target": "bands",
                                   "exact_symmetry": False}), ft)
    model = load_finetuned(ft)
    assert isinstance(model.encoder, ExactSymmetryEncoder)
    pretrained_weights = encoder.state_dict()
    assert list(model.encoder.state_dict()) == list(pretrained_weights)
    table = kpoint_permutation_table(model.target.kpoints).numpy()
    y = _standardised(model, cells)
    assert _relative(_standardised(model, _moved(cells, 5, (1, 3))), y[:, table[5], :]) <= TOL


def test_predicting_a_transformation_the_encoder_ignores_is_refused(tiny_data):
    from photossl.training import make_config

    with pytest.raises(PhotosslError, match="invariant"):
        make_config({"data": str(tiny_data), "method": "essl", "exact_symmetry": True})
    with pytest.raises(PhotosslError, match="exact_symmetry"):
        make_config({"data": str(tiny_data), "exact_symmetry": True, "circular_padding": False})
    with pytest.raises(PhotosslError, match="exact_symmetry"):
        make_finetune_config({"data": str(tiny_data), "exact_symmetry": True, "encoder": "resnet18"})


def test_cli_option(tiny_data, tmp_path):
    ft = tmp_path / "cli"
    result = CliRunner().invoke(cli, ["finetune", "--data", str(tiny_data), "--budget", "16", "--epochs", "1",
                                      "--head-dims", "16", "--threads", "1", "--no-progress", "--exact-symmetry",
                                      "--out", str(ft)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    model = load_finetuned(ft)
    assert model.config["exact_symmetry"] is True and isinstance(model.encoder, ExactSymmetryEncoder)


@pytest.mark.parametrize("target", ["bands", "dos"])
def test_the_p4m_encoder_gives_the_same_exact_symmetry(tiny_data, tmp_path, cells, target):
    """encoder 'p4m' (group convolutions) needs no wrapper: invariant DOS, bands equivariant through its orbit
    features; saved and loaded like any encoder."""
    from photossl.models import P4MEncoder

    ft = tmp_path / target
    finetune(make_finetune_config({**BASE, "data": str(tiny_data), "target": target, "encoder": "p4m",
                                   "exact_symmetry": False}), ft)
    model = load_finetuned(ft)
    assert isinstance(model.encoder, P4MEncoder)
    y = _standardised(model, cells)
    if target == "dos":
        assert model.network.output_permutation is None
        for label in range(8):
            assert _relative(_standardised(model, _moved(cells, label, (label, 2 * label + 1))), y) <= TOL
        return
    table = kpoint_permutation_table(model.target.kpoints).numpy()
    for label in range(8):
        assert _relative(_standardised(model, _moved(cells, label, (3, label))), y[:, table[label], :]) <= TOL
    # Not merely invariant (the output after one epoch moves little with the cell, but well above rounding).
    assert min(_relative(y[:, table[label], :], y) for label in range(1, 8)) > 10 * TOL


def test_a_p4m_encoder_pretrains_and_fine_tunes_but_cannot_predict_d4(tiny_data, tmp_path, cells):
    from photossl.models import P4MEncoder
    from photossl.training import load_pretrained, make_config, pretrain

    with pytest.raises(PhotosslError, match="'p4m' encoder is invariant"):
        make_config({"data": str(tiny_data), "method": "essl", "encoder": "p4m"})
    run = tmp_path / "p4m-run"
    pretrain(make_config({"data": str(tiny_data), "method": "simclr", "encoder": "p4m", "epochs": 1, "batch_size": 32,
                          "limit_samples": 32, "probe_every": 0, "progress": False, "threads": 1}), run)
    encoder, config = load_pretrained(run)
    assert config.encoder == "p4m" and isinstance(encoder, P4MEncoder)
    ft = tmp_path / "from-p4m"
    finetune(make_finetune_config({**BASE, "data": str(tiny_data), "pretrained": str(run), "exact_symmetry": False}),
             ft)
    model = load_finetuned(ft)
    assert isinstance(model.encoder, P4MEncoder)
    assert _relative(_standardised(model, _moved(cells, 6, (5, 1))), _standardised(model, cells)) <= TOL
