"""The runtime helpers every loop uses: device choice, precision, threads, seeded streams."""

import pytest
import torch

from photossl.errors import PhotosslError
from photossl.runtime import (
    autocast_dtype,
    precision_name,
    seeded,
    select_device,
    torch_generator,
    torch_threads,
)


def test_threads_are_restored_after_the_block():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_seeded_block_leaves_the_callers_stream_alone():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with seeded(1, 2):
        inside = torch.rand(2)
    with seeded(1, 2):
        assert torch.equal(torch.rand(2), inside)
    assert torch.equal(torch.rand(2), expected)
    assert torch.equal(torch.rand(3, generator=torch_generator(5)), torch.rand(3, generator=torch_generator(5)))


def test_cpu_device_and_precision():
    cpu = select_device("cpu")
    assert cpu.type == "cpu" and autocast_dtype("auto", cpu) is None and precision_name(None) == "fp32"
    assert precision_name(torch.bfloat16) == "bfloat16"
    with pytest.raises(PhotosslError, match="needs a CUDA device"):
        autocast_dtype("bf16", cpu)
