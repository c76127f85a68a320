"""Two gloo processes on CPU must reproduce one process on the concatenated batch."""

import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from photossl import distributed
from photossl.losses import nt_xent_loss

WORLD = 2
ROWS_PER_RANK = 4
TEMPERATURE = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _full_batch():
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(WORLD * ROWS_PER_RANK, 6, generator=g, dtype=torch.float64)
    x2 = x1 + 0.3 * torch.randn(x1.shape, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 6, generator=g, dtype=torch.float64)
    return x1, x2, weight


def _loss_and_weight_grad(x1, x2, weight, gather_distributed):
    """NT-Xent of a linear model's embeddings and its gradient with respect to the weights."""
    weight = weight.clone().requires_grad_(True)
    loss = nt_xent_loss(x1 @ weight.T, x2 @ weight.T, TEMPERATURE, gather_distributed)
    loss.backward()
    return loss.detach(), weight.grad


def _average_over_ranks(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    dist.all_reduce(t)
    return t / WORLD


def _worker(rank: int, port: int, out_dir: str) -> None:
    # A forked child must not enter an OpenMP parallel region set up by the parent.
    torch.set_num_threads(1)
    with distributed.local_gloo_group(rank, WORLD, port):
        x1, x2, weight = _full_batch()
        rows = slice(rank * ROWS_PER_RANK, (rank + 1) * ROWS_PER_RANK)
        loss, grad = _loss_and_weight_grad(x1[rows], x2[rows], weight, gather_distributed=True)
        local_loss, _ = _loss_and_weight_grad(x1[rows], x2[rows], weight, gather_distributed=False)

        # gather_with_grad alone: rank r's rows receive the sum over ranks of each rank's upstream gradient.
        x = torch.full((2, 3), float(rank), dtype=torch.float64, requires_grad=True)
        gathered = distributed.gather_with_grad(x)
        upstream = torch.arange(12.0, dtype=torch.float64).reshape(4, 3) * (rank + 1)
        (gathered * upstream).sum().backward()

        torch.save(
            {
                "rank": distributed.rank(),
                "world_size": distributed.world_size(),
                "is_distributed": distributed.is_distributed(),
                "loss": _average_over_ranks(loss),
                "grad": _average_over_ranks(grad),  # as DistributedDataParallel averages gradients
                "local_loss": _average_over_ranks(local_loss),
                "gathered": gathered.detach(),
                "x_grad": x.grad,
            },
            f"{out_dir}/rank{rank}.pt",
        )


def test_helpers_fall_back_without_process_group():
    assert distributed.rank() == 0
    assert distributed.world_size() == 1
    assert not distributed.is_distributed()
    x = torch.randn(3, 2, requires_grad=True)
    assert distributed.gather_with_grad(x) is x


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="gloo backend unavailable")
def test_two_ranks_equal_one_process(tmp_path):
    # fork skips re-importing torch in each child (seconds on a small CPU); the workers only use CPU tensors.
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    context = mp.start_processes(
        _worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=False, start_method=start_method
    )
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("distributed workers did not finish within 120 s")
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    expected_loss, expected_grad = _loss_and_weight_grad(*_full_batch(), gather_distributed=False)

    for r, result in enumerate(results):
        assert (result["rank"], result["world_size"], result["is_distributed"]) == (r, WORLD, True)
        torch.testing.assert_close(result["loss"], expected_loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(result["grad"], expected_grad, rtol=1e-10, atol=1e-12)
        # Without gathering each rank sees fewer negatives, so the test can tell the two apart.
        assert abs(result["local_loss"].item() - expected_loss.item()) > 1e-3

        rows = torch.cat([torch.full((2, 3), float(s), dtype=torch.float64) for s in range(WORLD)])
        torch.testing.assert_close(result["gathered"], rows)
        upstream = torch.arange(12.0, dtype=torch.float64).reshape(4, 3)
        summed_over_ranks = upstream * sum(s + 1 for s in range(WORLD))
        torch.testing.assert_close(result["x_grad"], summed_over_ranks[2 * r : 2 * r + 2])


def _failing_worker(rank: int, port: int) -> None:
    with distributed.local_gloo_group(rank, 1, port):
        raise ValueError("the body failed")


def test_a_failing_body_still_fails_the_process():
    with pytest.raises(mp.ProcessRaisedException, match="the body failed"):
        mp.start_processes(_failing_worker, args=(_free_port(),), nprocs=1, join=True, start_method="spawn")
