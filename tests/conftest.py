"""Fixtures shared by every test folder."""

import pytest


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread (tiny tensors gain nothing from more); the setting is restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
