"""Muon: momentum SGD whose update is orthogonalized by a Newton-Schulz iteration (modded-nanogpt)."""

import torch
import torch.distributed as dist

# Quintic coefficients chosen to push singular values towards 1 quickly (not exactly to 1).
NS5_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz5(grad: torch.Tensor, steps: int, eps: float = 1e-7) -> torch.Tensor:
    a, b, c = NS5_COEFFS
    x = grad.bfloat16()
    x /= x.norm() + eps
    transposed = grad.size(0) > grad.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if transposed else x


class Muon(torch.optim.Optimizer):
    """Nesterov momentum + Newton-Schulz orthogonalization for 2-D block matrices.

    Under torch.distributed, parameter i is orthogonalized on rank i % world_size and the bf16
    updates are summed across ranks in one flat all-reduce, so every rank applies every update.
    """

    def __init__(self, params, lr: float, momentum: float, backend_steps: int, nesterov: bool = True):
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure=None):
        distributed = dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if distributed else 0
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            momentum = group["momentum"]
            total = sum(p.numel() for p in params)
            updates = torch.zeros(total, device=params[0].device, dtype=torch.bfloat16)
            offset = 0
            for i, p in enumerate(params):
                if i % world_size == rank and p.grad is not None:
                    grad = p.grad
                    buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(grad))
                    buf.mul_(momentum).add_(grad)
                    if group["nesterov"]:
                        grad = grad.add(buf, alpha=momentum)
                    update = newton_schulz5(grad, steps=group["backend_steps"])
                    update *= max(1, update.size(0) / update.size(1)) ** 0.5
                    updates[offset : offset + p.numel()] = update.reshape(-1)
                offset += p.numel()
            if distributed:
                dist.all_reduce(updates, op=dist.ReduceOp.SUM)
            offset = 0
            for p in params:
                p.add_(updates[offset : offset + p.numel()].view_as(p).to(dtype=p.dtype), alpha=-group["lr"])
                offset += p.numel()
