"""Muon: momentum SGD whose update is orthogonalized by a Newton-Schulz iteration (modded-nanogpt), as the
baseline runs it. The later records' options (MuonEq-R row normalisation, the Polar Express coefficients,
decoupled weight decay) are golf.optim.muon_options."""

import torch
import torch.distributed as dist

# Quintic coefficients chosen to push singular values towards 1 quickly (not exactly to 1).
NS5_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz(grad: torch.Tensor, coeffs: tuple[tuple[float, float, float], ...], safety: float = 1.0,
                  eps: float = 1e-7) -> torch.Tensor:
    """Approximate orthogonalization of a matrix (or a stack of them along dim 0) in bf16."""
    x = grad.bfloat16()
    norm = x.norm(dim=(-2, -1), keepdim=True)
    x /= (norm * safety if safety != 1.0 else norm) + eps
    transposed = grad.size(-2) > grad.size(-1)
    if transposed:
        x = x.mT
    for a, b, c in coeffs:
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.mT if transposed else x


def newton_schulz5(grad: torch.Tensor, steps: int, eps: float = 1e-7) -> torch.Tensor:
    """The baseline's iteration: the NS5 quintic `steps` times."""
    return newton_schulz(grad, (NS5_COEFFS,) * steps, eps=eps)


_compiled_newton_schulz = None


def _orthogonalizer(compiled: bool):
    """`newton_schulz`, compiled on first use when the run compiles (train.compile)."""
    global _compiled_newton_schulz
    if not compiled:
        return newton_schulz
    if _compiled_newton_schulz is None:
        _compiled_newton_schulz = torch.compile(newton_schulz)
    return _compiled_newton_schulz


class Muon(torch.optim.Optimizer):
    """Nesterov momentum + Newton-Schulz orthogonalization for block matrices (2-D, or 3-D banks).

    Under torch.distributed, parameter i is orthogonalized on rank i % world_size and the bf16
    updates are all-gathered (half the traffic of the baseline's all-reduce of a zero-padded flat
    buffer, same numbers), so every rank applies every update.
    """

    def __init__(self, params, lr: float, momentum: float, backend_steps: int, nesterov: bool = True,
                 compiled: bool = False, options: dict | None = None):
        """`options`: the group defaults golf.optim.muon_options.MuonWithOptions adds."""
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps, nesterov=nesterov,
                                      **(options or {})))
        self.orthogonalize = _orthogonalizer(compiled)

    def coefficients(self, group: dict) -> tuple[tuple[float, float, float], ...]:
        """The (a, b, c) of every Newton-Schulz iteration: the NS5 quintic each time."""
        return (NS5_COEFFS,) * group["backend_steps"]

    def _momentum(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        """The (Nesterov) momentum direction of `p`, whose buffer this step updates."""
        grad = p.grad
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(grad)
        buf = state["momentum_buffer"]
        buf.mul_(group["momentum"]).add_(grad)
        return grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else grad

    def _orthogonalized(self, grad: torch.Tensor, coeffs, safety: float = 1.0) -> torch.Tensor:
        """The bf16 update: `grad` orthogonalized, scaled by sqrt(rows / cols) when tall."""
        update = self.orthogonalize(grad, coeffs, safety)
        scale = max(1, update.size(-2) / update.size(-1)) ** 0.5
        return update.mul_(scale) if scale != 1 else update  # x * 1.0 is x: the multiply is skipped, not changed

    def _update(self, p: torch.Tensor, group: dict, coeffs) -> torch.Tensor:
        return self._orthogonalized(self._momentum(p, group), coeffs)

    @staticmethod
    def _apply(p: torch.Tensor, update: torch.Tensor, group: dict) -> None:
        """p -= lr * update in p's dtype."""
        p.add_(update.view_as(p).to(dtype=p.dtype), alpha=-group["lr"])

    @torch.no_grad()
    def step(self, closure=None):
        distributed = dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if distributed else 0
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            coeffs = self.coefficients(group)
            if not distributed:  # one process: each update goes straight to its matrix, no flat buffer
                for p in params:
                    if p.grad is not None:
                        self._apply(p, self._update(p, group, coeffs), group)
                continue
            # Rank r orthogonalizes parameters r, r + W, ...; its updates go to one bf16 shard (padded to the
            # largest share), and one all-gather gives every rank every update.
            shards = [params[r::world_size] for r in range(world_size)]
            width = max(sum(p.numel() for p in shard) for shard in shards)
            local = torch.zeros(width, device=params[0].device, dtype=torch.bfloat16)
            offset = 0
            for p in shards[rank]:
                if p.grad is not None:
                    local[offset : offset + p.numel()] = self._update(p, group, coeffs).reshape(-1)
                offset += p.numel()
            updates = torch.empty(world_size * width, device=local.device, dtype=local.dtype)
            dist.all_gather_into_tensor(updates, local)
            for r, shard in enumerate(shards):
                offset = r * width
                for p in shard:
                    self._apply(p, updates[offset : offset + p.numel()], group)
                    offset += p.numel()
