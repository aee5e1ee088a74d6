"""Muon: momentum SGD whose update is orthogonalized by a Newton-Schulz iteration (modded-nanogpt).

Options on top of the baseline (all off by default): MuonEq-R row normalisation, the Polar
Express per-step coefficients, and decoupled weight decay before or after the update.

Two details differ between the sources and are options here: modded-nanogpt's Polar Express divides
the update by 1.02 x its norm (headroom for bf16 rounding) while PR #1550 divides by the norm alone
(`pe_safety=1.0`); and PR #1550 row-normalizes after transposing a tall matrix to its wide orientation,
i.e. it normalizes the columns of the MLP-up matrices (`row_norm_axis="transposed"`), where the MuonEq-R
paper and the 04-09 record normalize the rows as stored (`"rows"`).
"""

import torch
import torch.distributed as dist

# Quintic coefficients chosen to push singular values towards 1 quickly (not exactly to 1).
NS5_COEFFS = (3.4445, -4.7750, 2.0315)


def coefficient_schedule(kind: str, steps: int) -> tuple[tuple[float, float, float], ...]:
    """The (a, b, c) of every iteration for `optimizer.muon_coeffs`."""
    if kind == "polar_express":
        from golf.optim.polar_express import polar_express_schedule  # only runs that use it embed it

        return polar_express_schedule(steps)
    return (NS5_COEFFS,) * steps


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
    return newton_schulz(grad, coefficient_schedule("ns5", steps), eps=eps)


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
                 coeffs: str = "ns5", row_norm: bool = False, row_norm_axis: str = "rows", pe_safety: float = 1.02,
                 weight_decay: float = 0.0, wd_order: str = "before", compiled: bool = False):
        coefficient_schedule(coeffs, backend_steps)  # fail at construction, not at the first step
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps, nesterov=nesterov,
                                      coeffs=coeffs, row_norm=row_norm, row_norm_axis=row_norm_axis,
                                      pe_safety=pe_safety, weight_decay=weight_decay, wd_order=wd_order))
        self.orthogonalize = _orthogonalizer(compiled)

    def _update(self, p: torch.Tensor, group: dict, coeffs) -> torch.Tensor:
        """Momentum, then the orthogonalized bf16 update of `p` (scaled by sqrt(rows / cols) when tall)."""
        grad = p.grad
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(grad)
        buf = state["momentum_buffer"]
        buf.mul_(group["momentum"]).add_(grad)
        if group["nesterov"]:
            grad = grad.add(buf, alpha=group["momentum"])
        if group["row_norm"]:
            tall = grad.size(-2) > grad.size(-1)
            axis = -2 if group["row_norm_axis"] == "transposed" and tall else -1
            grad = grad / grad.norm(dim=axis, keepdim=True).clamp_min(1e-7)
        safety = group["pe_safety"] if group["coeffs"] == "polar_express" else 1.0
        update = self.orthogonalize(grad, coeffs, safety)
        scale = max(1, update.size(-2) / update.size(-1)) ** 0.5
        return update.mul_(scale) if scale != 1 else update  # x * 1.0 is x: the multiply is skipped, not changed

    @staticmethod
    def _apply(p: torch.Tensor, update: torch.Tensor, group: dict) -> None:
        """p -= lr * update in p's dtype, with decoupled weight decay before or after when on."""
        decays = group["weight_decay"] > 0 and p.grad is not None
        if decays and group["wd_order"] == "before":
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
        p.add_(update.view_as(p).to(dtype=p.dtype), alpha=-group["lr"])
        if decays and group["wd_order"] == "after":
            p.mul_(1.0 - group["lr"] * group["weight_decay"])

    @torch.no_grad()
    def step(self, closure=None):
        distributed = dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if distributed else 0
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            coeffs = coefficient_schedule(group["coeffs"], group["backend_steps"])
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
