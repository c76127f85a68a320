"""Optional data-parallel helpers that fall back to a single process when no process group exists."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group, or 0 without a process group."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group, or 1 without a process group."""
    return dist.get_world_size() if is_distributed() else 1


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order (picklable objects; a collective: every rank must call it)."""
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 in forward; in backward, sum the gradients of every rank and keep this rank's rows.

    Every rank's loss may depend on every rank's rows, so the gradient of the summed loss with respect to this
    rank's rows is the sum over ranks of the gradient each computed for the gathered tensor, restricted to the
    slice this rank contributed.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        ctx.rows = x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> torch.Tensor:
        # all_reduce works in place; never modify the incoming gradient.
        grad = grad_output.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0, differentiably.

    Shape: ``x`` is ``(B, ...)`` with the same shape on every rank; the result is ``(world_size * B, ...)`` with
    rank ``r``'s rows at ``[r * B, (r + 1) * B)``. Returns ``x`` itself without a process group (or with one rank).
    """
    if world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


@contextmanager
def local_gloo_group(rank: int, world_size: int, port: int, timeout_s: float = 60.0) -> Iterator[None]:
    """Join a gloo group of ``world_size`` processes on this machine (rank 0 serves ``127.0.0.1:port``) for the
    body of a spawned worker; when the body finishes the group is destroyed and the process ends with status 0
    without interpreter teardown. An exception leaves the group and propagates (a non-zero exit).

    Why the hard exit: gloo's worker threads may drop the last collective's tensors just after ``wait()`` returns;
    if that lands while the interpreter is finalising, the thread's GIL acquire aborts the process (SIGABRT) after
    its work is done. Write results to files before the body ends: nothing after it runs, atexit handlers included.
    """
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=timeout_s))
    try:
        yield
    except BaseException:
        dist.destroy_process_group()
        raise
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
