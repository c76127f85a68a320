"""Adam on stacked parameters: row m of every tensor belongs to member m, which moves at its own learning rate.

The arithmetic is that of ``torch.optim.Adam`` (single-tensor path, L2 weight decay added to the gradient, bias
corrections from the step count), so a member steps as its own ``torch.optim.Adam`` would. Every member steps at
every call, so one step count serves all of them.
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
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self, lrs: list[list[float]]) -> None:
        beta1, beta2 = self.betas
        self.steps += 1
        step = float(self.steps)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
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
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
            key = (self.group_of[name], param.dim(), param.dtype, param.device)
            if key not in sizes:  # torch multiplies exp_avg by the float32 step size, then divides: the same here
                sizes[key] = torch.tensor([-(row[key[0]] / bias_correction1) for row in lrs], dtype=param.dtype,
                                          device=param.device).view(-1, *([1] * (param.dim() - 1)))
            param.addcdiv_(exp_avg * sizes[key], denom)

    def keep(self, rows: list[int], params: dict[str, Tensor]) -> None:
        """Keep the state of members ``rows`` only, for their stacked ``params`` (e.g. after
        :meth:`photossl.finetune.stacked.StackedNetwork.keep`)."""
        self.params = params
        index = torch.as_tensor(rows, dtype=torch.long, device=next(iter(self.exp_avg.values())).device)
        self.exp_avg = {k: v.index_select(0, index) for k, v in self.exp_avg.items()}
        self.exp_avg_sq = {k: v.index_select(0, index) for k, v in self.exp_avg_sq.items()}
