"""Adam on stacked parameters: row m of every tensor belongs to member m, which moves at its own learning rate.

The arithmetic is that of ``torch.optim.Adam`` (single-tensor path, L2 weight decay added to the gradient, bias
corrections from the step count), so a member steps as its own ``torch.optim.Adam`` would. Every member steps at
every call; members keep their own step counts, which differ when some went on from a saved state
(:meth:`load_member`).
"""

from __future__ import annotations

import torch
from torch import Tensor


class StackedAdam:
    """Adam for the tensors ``params`` (name -> (M, ...) leaf tensors), each in parameter group ``group_of[name]``.

    :meth:`step` takes the learning rates ``lrs[m][g]`` of member m in group g.
    """

    def __init__(self, params: dict[str, Tensor], group_of: dict[str, int], weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = params
        self.group_of = group_of
        self.weight_decay, self.betas, self.eps = float(weight_decay), betas, float(eps)
        self.exp_avg = {k: torch.zeros_like(v) for k, v in params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in params.items()}
        self.steps = [0] * next(iter(params.values())).shape[0]  # per member

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self, lrs: list[list[float]]) -> None:
        beta1, beta2 = self.betas
        self.steps = [n + 1 for n in self.steps]
        bias_correction1 = [1 - beta1 ** float(n) for n in self.steps]
        # Members with the same step count share a divisor: the same scalar division a member's own Adam makes.
        rows_at: dict[int, list[int]] = {}
        for row, n in enumerate(self.steps):
            rows_at.setdefault(n, []).append(row)
        sqrt_bc2 = {n: (1 - beta2 ** float(n)) ** 0.5 for n in rows_at}
        sizes: dict[tuple, Tensor] = {}
        for name, param in self.params.items():
            grad = param.grad
            if grad is None:
                continue
            if self.weight_decay != 0:
                grad = grad.add(param, alpha=self.weight_decay)
            exp_avg, exp_avg_sq = self.exp_avg[name], self.exp_avg_sq[name]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            if len(rows_at) == 1:
                denom = (exp_avg_sq.sqrt() / sqrt_bc2[self.steps[0]]).add_(self.eps)
            else:
                denom = torch.empty_like(exp_avg_sq)
                for n, rows in rows_at.items():
                    index = torch.as_tensor(rows, dtype=torch.long, device=param.device)
                    denom.index_copy_(0, index, (exp_avg_sq.index_select(0, index).sqrt() / sqrt_bc2[n]).add_(self.eps))
            key = (self.group_of[name], param.dim(), param.dtype, param.device)
            if key not in sizes:  # torch multiplies exp_avg by the float32 step size, then divides: the same here
                sizes[key] = torch.tensor([-(row[key[0]] / bc1) for row, bc1 in zip(lrs, bias_correction1)],
                                          dtype=param.dtype, device=param.device).view(-1, *([1] * (param.dim() - 1)))
            param.addcdiv_(exp_avg * sizes[key], denom)

    def member_state(self, row: int) -> tuple[int, dict[str, Tensor], dict[str, Tensor]]:
        """Member ``row``'s (step count, first moments, second moments), CPU copies by parameter name."""
        return (self.steps[row], {k: v[row].detach().cpu().clone() for k, v in self.exp_avg.items()},
                {k: v[row].detach().cpu().clone() for k, v in self.exp_avg_sq.items()})

    @torch.no_grad()
    def load_member(self, row: int, steps: int, exp_avg: dict[str, Tensor], exp_avg_sq: dict[str, Tensor]) -> None:
        """Set member ``row``'s state (as :meth:`member_state` returns it) to go on from a saved state."""
        if set(exp_avg) != set(self.exp_avg) or set(exp_avg_sq) != set(self.exp_avg_sq):
            raise ValueError("the saved Adam state is not of these parameters")
        self.steps[row] = int(steps)
        for k, v in exp_avg.items():
            self.exp_avg[k][row].copy_(v)
        for k, v in exp_avg_sq.items():
            self.exp_avg_sq[k][row].copy_(v)

    def keep(self, rows: list[int], params: dict[str, Tensor]) -> None:
        """Keep the state of members ``rows`` only, for their stacked ``params`` (e.g. after
        :meth:`photossl.finetune.stacked.StackedNetwork.keep`)."""
        self.params = params
        index = torch.as_tensor(rows, dtype=torch.long, device=next(iter(self.exp_avg.values())).device)
        self.exp_avg = {k: v.index_select(0, index) for k, v in self.exp_avg.items()}
        self.exp_avg_sq = {k: v.index_select(0, index) for k, v in self.exp_avg_sq.items()}
        self.steps = [self.steps[row] for row in rows]
