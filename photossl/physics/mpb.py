"""Run MIT Photonic Bands (MPB, Scheme front end) on a pixel ε map: the reference the solver is checked against.

MPB reads the map through ``epsilon-input-file``. It stretches the file over the cell, file pixel ``j`` of ``F``
centred at ``(j + 1/2)/F``, and interpolates it linearly at its grid points ``i/M`` (``M`` = resolution, measured
from the cell corner), i.e. on the border between two file pixels. So the map is written pixel-repeated to a
``2M × 2M`` file and rolled by one fine pixel: the two fine pixels around every grid point then hold the same value,
and with ``mesh-size 1`` (no sub-pixel averaging) MPB's ε equals the map exactly. ``mpb_epsilon`` returns what MPB
really used, and the tests check it pixel for pixel.

Conventions (square lattice, a = 1): map axis 0 is x (first lattice vector), axis 1 is y; map pixel ``(i, j)`` is
MPB's grid point at lattice position ``(i/N − 1/2, j/N − 1/2)`` (the cell is centred on the origin). k-points are in
fractions of the reciprocal lattice vectors (units of 2π/a); frequencies are ωa/2πc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import h5py
import numpy as np

from photossl.errors import PhotosslError

__all__ = ["mpb_available", "run_mpb", "mpb_epsilon"]

_POLARIZATIONS = ("tm", "te")
_FREQ_TAG = "photossl-freqs:"
_VEL_TAG = "photossl-velocities:"


def mpb_available(executable: str = "mpb") -> bool:
    """True if the MPB executable is on PATH."""
    return shutil.which(executable) is not None


def run_mpb(
    eps,
    kpoints,
    polarization: str = "tm",
    n_bands: int = 10,
    resolution: int | None = None,
    workdir: str | os.PathLike | None = None,
    timeout: float | None = None,
    extra_bands: int = 2,
    *,
    tolerance: float = 1e-7,
    block_size: int = 0,
    group_velocities: bool = False,
    randomize_fields: bool = False,
    executable: str = "mpb",
):
    """Band frequencies of one pixel ε map computed by MPB in a subprocess.

    Args:
        eps: ``(N, N)`` relative permittivity, axis 0 = x, positive and finite (numpy array or torch tensor).
        kpoints: ``(K, 2)`` Bloch vectors in fractions of the reciprocal lattice vectors (2π/a units).
        polarization: ``"tm"`` (E along z) or ``"te"`` (H along z).
        n_bands: number of lowest bands returned.
        resolution: MPB grid points per lattice constant; a positive multiple of ``N`` (default ``N``: one grid point
            per pixel). A multiple ``m·N`` repeats every pixel ``m × m`` times, so it refines the discretisation of
            the same staircase.
        workdir: directory for the control, HDF5 and log files (kept); default a temporary directory (removed).
        timeout: seconds before the subprocess is killed.
        extra_bands: bands computed beyond ``n_bands`` and dropped, so that the kept ones are converged and sorted.
        tolerance: MPB's eigensolver tolerance (MPB's default 1e-7).
        block_size: MPB's ``eigensolver-block-size``; 0 solves all bands in one block (bands come out in order).
        group_velocities: also return group velocities.
        randomize_fields: start every k-point from random fields. MPB normally starts from the previous k-point's
            eigenvectors, which is faster but can never leave an invariant subspace: on a uniform ε (the empty
            lattice, where plane waves do not mix) it then misses bands after the first k-point.
        executable: name or path of the MPB binary.

    Returns:
        ``(K, n_bands)`` float64 frequencies ωa/2πc, ascending in each row. With ``group_velocities=True`` a pair
        ``(freqs, velocities)``, velocities ``(K, n_bands, 2)``: Cartesian ``(v_x, v_y)`` in units of c, which on
        the square lattice with a = 1 equals ∂(ωa/2πc)/∂k_i with k_i the fractional k-coordinates. At degenerate
        k-points the velocities of the degenerate bands are those of MPB's (arbitrary) basis of the subspace.

    Raises:
        PhotosslError: bad arguments, MPB missing, failing, timing out, or printing fewer results than asked for.
    """
    eps = _check_eps(eps)
    k = np.asarray(kpoints, dtype=np.float64)
    if k.ndim != 2 or k.shape[1] != 2 or k.shape[0] == 0 or not np.all(np.isfinite(k)):
        raise PhotosslError(f"kpoints must be a finite (K, 2) array with K >= 1, got shape {k.shape}")
    if polarization not in _POLARIZATIONS:
        raise PhotosslError(f"polarization must be one of {_POLARIZATIONS}, got {polarization!r}")
    if int(n_bands) != n_bands or n_bands < 1:
        raise PhotosslError(f"n_bands must be a positive integer, got {n_bands!r}")
    if int(extra_bands) != extra_bands or extra_bands < 0:
        raise PhotosslError(f"extra_bands must be a non-negative integer, got {extra_bands!r}")
    if not tolerance > 0:
        raise PhotosslError(f"tolerance must be positive, got {tolerance!r}")
    n_bands, extra_bands = int(n_bands), int(extra_bands)
    total = n_bands + extra_bands

    kpts = " ".join(f"(vector3 {kx!r} {ky!r} 0)" for kx, ky in k.tolist())
    # MPB's own tmfreqs/tefreqs lines carry 6 significant digits; Scheme's display prints every digit.
    body = (
        f"(set! tolerance {float(tolerance)!r})\n"
        f"(set! eigensolver-block-size {int(block_size)})\n"
        f"(set! num-bands {total})\n"
        f"(set! randomize-fields? {'true' if randomize_fields else 'false'})\n"
        f"(set! k-points (list {kpts}))\n"
        f'(define (photossl-freqs) (display "{_FREQ_TAG}")'
        ' (for-each (lambda (f) (display " ") (display f)) freqs) (newline))\n'
        f'(define (photossl-velocities) (display "{_VEL_TAG}")'
        ' (for-each (lambda (v) (display " ") (display (vector3-x v)) (display " ") (display (vector3-y v)))'
        " (compute-group-velocities)) (newline))\n"
        f"(run-{polarization} photossl-freqs{' photossl-velocities' if group_velocities else ''})\n"
    )
    stdout = _run(eps, resolution, body, workdir, timeout, executable)

    freqs = _parse(stdout, _FREQ_TAG, total)
    if freqs.shape[0] != k.shape[0]:
        raise PhotosslError(f"MPB printed frequencies for {freqs.shape[0]} of {k.shape[0]} k-points: {_tail(stdout)}")
    order = np.argsort(freqs, axis=1, kind="stable")[:, :n_bands]
    freqs = np.take_along_axis(freqs, order, axis=1)
    if not group_velocities:
        return freqs
    vel = _parse(stdout, _VEL_TAG, 2 * total).reshape(-1, total, 2)
    if vel.shape[0] != k.shape[0]:
        raise PhotosslError(f"MPB printed velocities for {vel.shape[0]} of {k.shape[0]} k-points: {_tail(stdout)}")
    return freqs, np.take_along_axis(vel, order[:, :, None], axis=1)


def mpb_epsilon(
    eps,
    resolution: int | None = None,
    workdir: str | os.PathLike | None = None,
    timeout: float | None = None,
    executable: str = "mpb",
) -> np.ndarray:
    """The ε tensor MPB builds from ``eps`` with the same input path as ``run_mpb`` (read from its epsilon file).

    Returns:
        ``(3, 3, R, R)`` float64 ε tensor on MPB's grid (R = resolution, default N), axes as in the map. For an
        exact transfer it is ``eps`` (pixel-repeated if R > N) on the diagonal and zero off it.
    """
    eps = _check_eps(eps)
    body = '(set! filename-prefix "mpbeps-")\n(init-params NO-PARITY false)\n(output-epsilon)\n'
    with _workdir(workdir) as wd:
        _run(eps, resolution, body, wd, timeout, executable)
        with h5py.File(Path(wd) / "mpbeps-epsilon.h5", "r") as f:
            comp = {}
            for a in "xyz":
                for b in "xyz":
                    name = f"epsilon.{min(a, b)}{max(a, b)}"
                    comp[a + b] = np.asarray(f[name][...], dtype=np.float64)
    return np.stack([np.stack([comp[a + b] for b in "xyz"]) for a in "xyz"])


def _check_eps(eps) -> np.ndarray:
    if hasattr(eps, "detach"):  # a torch tensor, possibly on a GPU
        eps = eps.detach().cpu().numpy()
    eps = np.asarray(eps, dtype=np.float64)
    if eps.ndim != 2 or eps.shape[0] != eps.shape[1] or eps.shape[0] < 1:
        raise PhotosslError(f"eps must be a square (N, N) map, got shape {eps.shape}")
    if not np.all(np.isfinite(eps)) or np.any(eps <= 0):
        raise PhotosslError("eps must be finite and positive everywhere")
    return eps


def _epsilon_file(eps: np.ndarray, resolution: int) -> np.ndarray:
    # Grid point i sits on the border between fine pixels 2i-1 and 2i; the roll puts map pixel i on both.
    rep = 2 * resolution // eps.shape[0]
    fine = np.repeat(np.repeat(eps, rep, axis=0), rep, axis=1)
    return np.roll(fine, (-1, -1), axis=(0, 1))


def _run(eps, resolution, body, workdir, timeout, executable) -> str:
    n = eps.shape[0]
    if resolution is None:
        resolution = n
    if int(resolution) != resolution or resolution < n or resolution % n:
        raise PhotosslError(f"resolution must be a positive multiple of the map size {n}, got {resolution!r}")
    resolution = int(resolution)
    exe = shutil.which(executable)
    if exe is None:
        raise PhotosslError(f"MPB executable {executable!r} not found on PATH (Debian/Ubuntu: apt install mpb)")
    with _workdir(workdir) as wd:
        wd = Path(wd)
        with h5py.File(wd / "eps.h5", "w") as f:
            f.create_dataset("data", data=_epsilon_file(eps, resolution))
        ctl = (
            "(set! geometry-lattice (make lattice (size 1 1 no-size)))\n"
            f"(set! resolution {resolution})\n"
            "(set! mesh-size 1)\n"
            '(set! epsilon-input-file "eps.h5")\n' + body
        )
        (wd / "run.ctl").write_text(ctl)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        try:
            proc = subprocess.run(
                [exe, "run.ctl"], cwd=wd, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as err:
            raise PhotosslError(f"MPB timed out after {timeout} s") from err
        except OSError as err:
            raise PhotosslError(f"MPB could not be started: {err}") from err
        if workdir is not None:
            (wd / "run.out").write_text(proc.stdout)
            (wd / "run.err").write_text(proc.stderr)
        if proc.returncode != 0:
            raise PhotosslError(
                f"MPB failed with exit code {proc.returncode}: {_tail(proc.stderr) or _tail(proc.stdout)}"
            )
        return proc.stdout


class _workdir:
    """A given directory (created, kept) or a temporary one (removed)."""

    def __init__(self, path):
        self.path, self._tmp = path, None

    def __enter__(self) -> str:
        if self.path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="photossl-mpb-")
            return self._tmp.name
        Path(self.path).mkdir(parents=True, exist_ok=True)
        return str(self.path)

    def __exit__(self, *exc):
        if self._tmp is not None:
            self._tmp.cleanup()


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def _parse(stdout: str, tag: str, count: int) -> np.ndarray:
    rows = []
    for line in stdout.splitlines():
        if line.startswith(tag):
            values = line[len(tag) :].split()
            if len(values) != count:
                raise PhotosslError(f"MPB printed {len(values)} values where {count} were expected: {line.strip()}")
            rows.append([float(v) for v in values])
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), count)
