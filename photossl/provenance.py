"""How a result was made, in the form every writer records it: seeds derived from (stream, seed, ...) words, and
the versions of the software that made it.

A seed is never drawn from another generator's state: it is a function of the words alone, so that cell ``i`` of a
dataset, a split or an initialisation does not depend on the order in which other things were drawn.
"""

from __future__ import annotations

import platform

import numpy as np

SEED_BITS = 63  # fits a signed 64-bit integer (NetCDF, torch.manual_seed) without sign trouble


def derive_seed(*words: int) -> int:
    """A 63-bit seed that depends only on ``words`` (e.g. (dataset seed, cell index) or (stream, seed)):
    ``SeedSequence(words).generate_state(1, uint64)[0] >> 1``. Different words give independent seeds; 10^7 cells
    of one dataset don't collide."""
    state = np.random.SeedSequence(list(words)).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(64 - SEED_BITS))


def random_generator(*words: int) -> np.random.Generator:
    """A numpy Generator seeded by ``words`` (the same stream as ``np.random.default_rng(list(words))``)."""
    return np.random.default_rng(np.random.SeedSequence(list(words)))


def software_versions(*packages: str) -> dict[str, str]:
    """Versions of photossl, torch and numpy, then ``packages`` (distribution names such as ``scikit-learn``, read
    from the installed metadata, so nothing is imported for them), then Python."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from photossl import __version__

    record = {"photossl": str(__version__), "torch": str(torch.__version__), "numpy": str(np.__version__)}
    for package in packages:
        try:
            record[package] = version(package)
        except PackageNotFoundError:
            record[package] = "not installed"
    record["python"] = platform.python_version()
    return record


def photossl_version() -> str:
    """The version of photossl itself (what dataset chunks and manifests record)."""
    from photossl import __version__

    return str(__version__)
