"""Targets, scores, target scaling, augmentation of targets, and the classical baseline's features."""

import numpy as np
import pytest
import torch

from photossl.finetune import TargetInfo, TargetScaler, classical_features, score
from photossl.finetune.targets import choose_variable


def _dos_info(name):
    freq = np.linspace(0.0, 0.9595, 400)
    return TargetInfo(name, name, (400,), ("freq",), coords={"freq": freq},
                      offset=2 * np.pi * freq if name == "dos_eldiff" else None)


def test_dos_eldiff_is_scored_on_the_dos_by_hand():
    info = _dos_info("dos_eldiff")
    freq = info.coords["freq"]
    dos = 2 * np.pi * freq + 1.0  # the true DOS: empty lattice + 1
    pred_dos = dos.copy()
    pred_dos[100:400] += 0.1 * dos[100:400]  # 10 % off on the scored bins
    pred_dos[:100] += 50.0  # the first 100 bins are not scored
    eldiff = lambda d: d - 2 * np.pi * freq  # noqa: E731
    result = score(info, eldiff(pred_dos)[None], eldiff(dos)[None])
    assert result["dos_rel_l1"] == pytest.approx(0.1)
    # scored on the difference itself, the same prediction would be off by 0.1 * mean DOS / 1
    on_difference = score(_dos_info("dos"), eldiff(pred_dos)[None], eldiff(dos)[None])["dos_rel_l1"]
    assert on_difference == pytest.approx(0.1 * dos[100:400].mean())


def test_gap_and_band_scores():
    gaps = TargetInfo("gaps", "gaps_tm", (2, 3), ("band_pair", "gap_field"))
    true = np.array([[[0.2, 0.3, 0.4], [0.5, 0.5, 0.0]]])
    out = score(gaps, true + 0.01, true)
    assert out["gaps_mae"] == pytest.approx(0.01) and out["gaps_rel"] == pytest.approx(0.06 / 1.9)
    bands = TargetInfo("bands", "bands_tm", (3, 2), ("k", "band"))
    true = np.ones((2, 3, 2))
    out = score(bands, true * 1.05, true)
    assert out["bands_rel_l1"] == pytest.approx(0.05) and out["bands_mae"] == pytest.approx(0.05)


def test_polarization_is_never_swapped():
    assert choose_variable(["dos", "dos_tm", "dos_eldiff_tm"], "dos_eldiff", "tm") == "dos_eldiff_tm"
    with pytest.raises(ValueError, match="no TE 'dos_eldiff'"):
        choose_variable(["dos_eldiff", "dos_eldiff_tm"], "dos_eldiff", "te")
    assert choose_variable(["dos_eldiff"], "dos_eldiff", "tm") == "dos_eldiff"  # an unpolarized dataset
    with pytest.raises(ValueError, match="no TM 'gaps'"):
        choose_variable(["gaps_te"], "gaps", "tm")


def test_target_scaler_round_trip():
    y = torch.randn(7, 3, 4) * 5 + 2
    scaler = TargetScaler.fit(y)
    z = scaler.forward(y)
    assert z.shape == (7, 12) and z.mean(0).abs().max() < 1e-5 and z.pow(2).mean().sqrt() == pytest.approx(1, abs=1e-5)
    assert torch.allclose(scaler.inverse(z).reshape(y.shape), y, atol=1e-5)


def test_augmented_band_targets_match_the_solver(tiny_data):
    """Rotating / mirroring / translating a cell and permuting its bands over k agree with solving the moved cell."""
    from photossl.data.loaders import load_arrays, open_cells
    from photossl.finetune.augment import Augmenter
    from photossl.finetune.targets import target_info
    from photossl.physics import solve_bands

    dataset = open_cells(tiny_data)
    info = target_info(dataset, "bands", "tm")
    dataset.close()
    raw, _ = load_arrays(tiny_data, None, np.arange(4), normalise=False)
    images, _ = load_arrays(tiny_data, None, np.arange(4))
    kpoints = info.kpoints
    options = {"cutoff": 3.0}
    bands = torch.as_tensor(solve_bands(raw[:, 0].double().numpy(), kpoints, "tm", n_bands=5, **options))
    augment = Augmenter(["translate", "d4"], info)
    moved, moved_bands = augment(images, bands, torch.Generator().manual_seed(1))
    assert not torch.allclose(moved, images)  # something moved
    moved_eps = (moved[:, 0] * 19 + 1).double().numpy()
    solved = solve_bands(moved_eps, kpoints, "tm", n_bands=5, **options)
    assert np.allclose(solved, moved_bands.numpy(), rtol=1e-6, atol=1e-8)


def test_classical_features():
    rng = np.random.default_rng(0)
    eps = rng.uniform(1, 20, (3, 32, 32))
    features = classical_features(eps)
    assert features.shape == (3, 64 + 16 + 7) and np.isfinite(features).all()
    rolled = classical_features(np.roll(eps, (5, 11), axis=(1, 2)))
    # power spectrum and scalars do not see translations; the pooled image does
    assert np.allclose(rolled[:, 64:], features[:, 64:])
    assert not np.allclose(rolled[:, :64], features[:, :64])
    flat = classical_features(np.full((1, 1, 16, 16), 4.0))
    assert np.allclose(flat[0, 64:72], 0) and flat[0, 72] == pytest.approx(4.0) and flat[0, -1] == 1.0
    assert flat[0, 76] == pytest.approx(0.25) and flat[0, 77] == pytest.approx(2.0)
