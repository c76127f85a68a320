import numpy as np
import pytest
import torch

from photossl.errors import PhotosslError
from photossl.evaluation import (
    DOS_START,
    DOS_STOP,
    dos_relative_l1,
    mean_absolute_error,
    pooled_relative_error,
    relative_l1,
)


def slow_dos_error(pred, true, start=100, stop=400):
    """The SIB-CL formula written out with loops."""
    errors = []
    for p, y in zip(pred, true):
        num = sum(abs(p[j] - y[j]) for j in range(start, stop))
        den = sum(abs(y[j]) for j in range(start, stop))
        errors.append(num / den)
    return sum(errors) / len(errors)


def test_hand_computed_example():
    # Window j = 2, 3, 4 of 6 bins; bins 0, 1, 5 hold garbage that must not count.
    true = np.array([[9.0, 9.0, 1.0, 2.0, 3.0, 99.0], [-7.0, 5.0, 2.0, -2.0, 4.0, 0.0]])
    pred = np.array([[0.0, 0.0, 2.0, 2.0, 1.0, 0.0], [0.0, 0.0, 1.0, -1.0, 4.0, 50.0]])
    # sample 0: (|2-1| + |2-2| + |1-3|) / (1 + 2 + 3) = 3/6; sample 1: (1 + 1 + 0) / (2 + 2 + 4) = 2/8
    per_sample = dos_relative_l1(pred, true, start=2, stop=5, reduction="none")
    np.testing.assert_allclose(per_sample, [0.5, 0.25], rtol=0, atol=1e-15)
    assert dos_relative_l1(pred, true, start=2, stop=5) == pytest.approx(0.375, abs=1e-15)


def test_default_window_is_bins_100_to_399():
    assert (DOS_START, DOS_STOP) == (100, 400)
    true = np.ones((1, 500))
    pred = true.copy()
    pred[0, 99] += 1000.0  # outside the window
    pred[0, 400:] -= 1000.0  # outside the window
    assert dos_relative_l1(pred, true) == 0.0
    pred[0, 100] += 3.0
    pred[0, 399] -= 3.0
    assert dos_relative_l1(pred, true) == pytest.approx(6.0 / 300.0, abs=1e-15)


def test_matches_slow_loop_and_torch():
    rng = np.random.default_rng(0)
    true = rng.uniform(0.5, 2.0, size=(5, 500))
    pred = true + rng.normal(scale=0.1, size=true.shape)
    expected = slow_dos_error(pred, true)
    assert dos_relative_l1(pred, true) == pytest.approx(expected, rel=1e-12)
    got = dos_relative_l1(torch.tensor(pred), torch.tensor(true), reduction="none")
    assert isinstance(got, torch.Tensor) and got.shape == (5,)
    assert float(got.mean()) == pytest.approx(expected, rel=1e-12)
    # Extra leading dims are samples too; a single 1-D DOS is one sample.
    stacked = dos_relative_l1(pred.reshape(5, 1, 500), true.reshape(5, 1, 500), reduction="none")
    assert stacked.shape == (5, 1)
    assert dos_relative_l1(pred[0], true[0]) == pytest.approx(slow_dos_error(pred[:1], true[:1]), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs", [{"start": 100, "stop": 600}, {"start": 300, "stop": 300}, {"start": -1}, {"reduction": "sum"}]
)
def test_bad_arguments_are_rejected(kwargs):
    x = np.ones((2, 500))
    with pytest.raises(PhotosslError):
        dos_relative_l1(x, x, **kwargs)


def test_shape_mismatch_is_rejected():
    with pytest.raises(PhotosslError, match="same shape"):
        dos_relative_l1(np.ones((2, 500)), np.ones((3, 500)))


def test_gap_and_band_errors_by_hand():
    true_gaps = np.array([0.1, 0.0, 0.2])  # one cell without a gap
    pred_gaps = np.array([0.12, 0.01, 0.2])
    assert mean_absolute_error(pred_gaps, true_gaps) == pytest.approx((0.02 + 0.01 + 0.0) / 3)
    assert pooled_relative_error(pred_gaps, true_gaps) == pytest.approx(0.03 / 0.3)
    with np.errstate(divide="ignore"):
        assert np.isinf(relative_l1(pred_gaps, true_gaps, reduction="none")[1])

    true_bands = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # (B=1, K=2, bands=2)
    pred_bands = np.array([[[1.5, 2.0], [3.0, 3.0]]])
    assert mean_absolute_error(pred_bands, true_bands) == pytest.approx(1.5 / 4)
    assert relative_l1(pred_bands, true_bands) == pytest.approx(1.5 / 10)
    per_k = relative_l1(pred_bands, true_bands, sample_dims=2, reduction="none")
    np.testing.assert_allclose(per_k, [[0.5 / 3, 1.0 / 7]])
    with pytest.raises(PhotosslError, match="sample_dims"):
        mean_absolute_error(pred_bands, true_bands, sample_dims=4)
