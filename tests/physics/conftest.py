import numpy as np
import pytest

from photossl.physics import fourier_level_set_cell


@pytest.fixture
def random_cell() -> np.ndarray:
    """A 16x16 two-phase p1 cell with high contrast."""
    return fourier_level_set_cell(seed=11, n=16, eps_in_range=(12.0, 16.0), eps_out_range=(1.0, 2.0),
                                  filling_range=(0.4, 0.6)).eps
