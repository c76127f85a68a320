"""The MPB runner: units and parsing against the empty lattice, pixel-exact ε transfer, axis convention, errors."""

import os
import stat
import sys

import numpy as np
import pytest

from photossl.errors import PhotosslError
from photossl.physics.mpb import mpb_available, mpb_epsilon, run_mpb

needs_mpb = pytest.mark.skipif(not mpb_available(), reason="Debian's mpb is not installed (apt install mpb)")

KPOINTS = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.13, 0.31], [-0.37, 0.21]])


def empty_lattice(kpoints, eps, n_bands, order=4):
    """ωa/2πc = |k + G| / √ε, k and G in units of 2π/a, lowest n_bands per k."""
    g = np.stack(np.meshgrid(np.arange(-order, order + 1), np.arange(-order, order + 1), indexing="ij"), -1)
    norms = np.linalg.norm(kpoints[:, None, :] + g.reshape(1, -1, 2), axis=-1) / np.sqrt(eps)
    return np.sort(norms, axis=1)[:, :n_bands]


def asymmetric_map(n=8):
    """No mirror, rotation or transpose symmetry: a 2×1 block off centre and one single pixel."""
    eps = np.ones((n, n))
    eps[1:3, 5] = 5.0
    eps[6, 1] = 3.0
    return eps


@pytest.mark.mpb
@needs_mpb
@pytest.mark.parametrize("polarization", ["tm", "te"])
def test_empty_lattice_matches_free_photon_bands(polarization):
    """Several k-points in one run check the row order; plane waves do not mix on a uniform ε, so every k-point
    starts from random fields (see run_mpb)."""
    eps = 2.25
    freqs = run_mpb(np.full((8, 8), eps), KPOINTS, polarization, n_bands=8, tolerance=1e-10, randomize_fields=True)
    assert freqs.shape == (len(KPOINTS), 8)
    np.testing.assert_allclose(freqs, empty_lattice(KPOINTS, eps, 8), atol=1e-7)


@pytest.mark.mpb
@needs_mpb
def test_empty_lattice_group_velocities():
    """v = (k + G)/(|k + G| √ε) in units of c; at a generic k the lowest bands are non-degenerate."""
    eps, k = 2.25, np.array([[0.13, 0.31]])
    freqs, vel = run_mpb(np.full((8, 8), eps), k, "tm", n_bands=5, tolerance=1e-10, group_velocities=True)
    g = np.stack(np.meshgrid(np.arange(-3, 4), np.arange(-3, 4), indexing="ij"), -1).reshape(-1, 2)
    q = k[0] + g
    order = np.argsort(np.linalg.norm(q, axis=1))[:5]
    expected = q[order] / (np.linalg.norm(q[order], axis=1, keepdims=True) * np.sqrt(eps))
    assert vel.shape == (1, 5, 2)
    np.testing.assert_allclose(freqs[0], np.linalg.norm(q[order], axis=1) / np.sqrt(eps), atol=1e-7)
    np.testing.assert_allclose(vel[0], expected, atol=1e-6)


@pytest.mark.mpb
@needs_mpb
def test_group_velocities_match_finite_differences():
    """On a non-uniform cell, solved in small blocks so the runner has to reorder bands and velocities together."""
    eps = asymmetric_map(8) * 2.0
    k0, h = np.array([0.21, -0.13]), 1e-4
    k = np.array([k0, k0 + [h, 0], k0 - [h, 0], k0 + [0, h], k0 - [0, h]])
    freqs, vel = run_mpb(eps, k, "te", n_bands=6, tolerance=1e-12, block_size=-2, group_velocities=True)
    assert np.all(np.diff(freqs[0]) > 1e-3), "bands at k0 must be non-degenerate for this check"
    finite = np.stack([freqs[1] - freqs[2], freqs[3] - freqs[4]], axis=-1) / (2 * h)
    np.testing.assert_allclose(vel[0], finite, atol=2e-4)


@pytest.mark.mpb
@needs_mpb
@pytest.mark.parametrize("resolution", [None, 16])
def test_mpb_epsilon_equals_map_pixel_for_pixel(resolution):
    eps = asymmetric_map(8)
    tensor = mpb_epsilon(eps, resolution=resolution)
    expected = eps if resolution is None else np.repeat(np.repeat(eps, 2, 0), 2, 1)
    assert tensor.shape == (3, 3) + expected.shape
    for axis in range(3):
        np.testing.assert_array_equal(tensor[axis, axis], expected)
    off_diagonal = tensor[~np.eye(3, dtype=bool)]
    np.testing.assert_array_equal(off_diagonal, 0.0)


@pytest.mark.mpb
@needs_mpb
def test_axis_zero_is_x():
    """Layers stacked along axis 0 open a gap at k = (1/2, 0) and leave the folded pair degenerate at (0, 1/2).

    Layers do not mix plane waves of different k_y, so fields are randomised per k-point (see run_mpb).
    """
    eps = np.ones((16, 16))
    eps[:8, :] = 13.0
    k = np.array([[0.5, 0.0], [0.0, 0.5]])
    freqs = run_mpb(eps, k, "tm", n_bands=2, tolerance=1e-10, randomize_fields=True)
    assert freqs[0, 1] - freqs[0, 0] > 0.05
    assert abs(freqs[1, 1] - freqs[1, 0]) < 1e-6
    swapped = run_mpb(eps.T, k, "tm", n_bands=2, tolerance=1e-10, randomize_fields=True)
    np.testing.assert_allclose(swapped, freqs[::-1], rtol=1e-6)


@pytest.mark.mpb
@needs_mpb
def test_small_blocks_come_back_sorted_and_equal():
    """Several eigensolver blocks may return bands out of order; the runner sorts them."""
    eps = asymmetric_map(8) * 2.0
    one_block = run_mpb(eps, KPOINTS, "te", n_bands=8, tolerance=1e-10)
    blocks = run_mpb(eps, KPOINTS, "te", n_bands=8, tolerance=1e-10, block_size=-3)
    assert np.all(np.diff(blocks, axis=1) >= 0)
    np.testing.assert_allclose(blocks, one_block, rtol=1e-5, atol=1e-7)


@pytest.mark.mpb
@needs_mpb
def test_workdir_keeps_inputs_and_log(tmp_path):
    run_mpb(np.full((4, 4), 2.0), [[0.1, 0.2]], n_bands=2, workdir=tmp_path / "run")
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"eps.h5", "run.ctl", "run.out"} <= names
    assert "(set! mesh-size 1)" in (tmp_path / "run" / "run.ctl").read_text()


def test_missing_binary_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not mpb_available()
    with pytest.raises(PhotosslError, match="not found"):
        run_mpb(np.ones((4, 4)), [[0.0, 0.0]])


def fake_mpb(directory, script):
    """An executable named mpb that runs ``script`` with this Python."""
    path = directory / "mpb"
    path.write_text(f"#!{sys.executable}\nimport sys, time\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_failure_reports_stderr_tail_in_one_line(monkeypatch, tmp_path):
    fake_mpb(tmp_path, 'print("line one", file=sys.stderr)\nprint("fatal: bad epsilon", file=sys.stderr)\n'
                       'sys.exit(3)\n')
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    with pytest.raises(PhotosslError, match="exit code 3") as info:
        run_mpb(np.ones((4, 4)), [[0.0, 0.0]])
    assert "fatal: bad epsilon" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_output_is_an_error(monkeypatch, tmp_path):
    fake_mpb(tmp_path, "print('photossl-freqs: 0.1 0.2')\n")
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    with pytest.raises(PhotosslError, match="values where"):
        run_mpb(np.ones((4, 4)), [[0.0, 0.0]], n_bands=2, extra_bands=1)
    with pytest.raises(PhotosslError, match="1 of 2 k-points"):
        run_mpb(np.ones((4, 4)), [[0.0, 0.0], [0.1, 0.0]], n_bands=2, extra_bands=0)


def test_timeout_raises(monkeypatch, tmp_path):
    fake_mpb(tmp_path, "time.sleep(5)\n")
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    with pytest.raises(PhotosslError, match="timed out"):
        run_mpb(np.ones((4, 4)), [[0.0, 0.0]], timeout=0.3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(eps=np.ones((4, 5))), "square"),
        (dict(eps=-np.ones((4, 4))), "positive"),
        (dict(kpoints=np.zeros((3, 3))), "kpoints"),
        (dict(polarization="TEM"), "polarization"),
        (dict(n_bands=0), "n_bands"),
        (dict(extra_bands=-1), "extra_bands"),
        (dict(resolution=6), "resolution"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    args = dict(eps=np.ones((4, 4)), kpoints=np.zeros((1, 2)))
    args.update(kwargs)
    with pytest.raises(PhotosslError, match=message):
        run_mpb(**args)
