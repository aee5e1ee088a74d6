"""Numeric guards: a NaN or inf in the loss or the weights stops the run and says where.

The loss is watched every step without a host sync: a device scalar remembers the first step
whose loss was not finite and is read only at log steps, checkpoints and the end. The weights are
checked before every checkpoint and before the artifact is written, so a broken model is never
saved or exported.
"""

import torch

from golf.errors import GolfError


class NonFiniteError(GolfError):
    """Training produced NaN or inf."""


class LossWatch:
    def __init__(self, device: torch.device):
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)

    def observe(self, step: int, loss: torch.Tensor) -> None:
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, torch.full_like(self.first_bad, step), self.first_bad)

    def check(self, loss: torch.Tensor) -> None:
        step = int(self.first_bad.item())
        if step >= 0:
            raise NonFiniteError(f"training diverged: train loss became {float(loss)} at step {step}",
                                 fix="lower the learning rates (optimizer.*_lr) or enable optimizer.grad_clip_norm")


def check_finite_weights(model: torch.nn.Module, step: int, when: str) -> None:
    """Raise naming the first parameter or buffer that holds NaN/inf."""
    tensors = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in tensors]).cpu()
    if not bool(finite.all()):
        name, tensor = tensors[int((~finite).nonzero()[0])]
        bad = int((~torch.isfinite(tensor)).sum())
        raise NonFiniteError(f"weight {name} has {bad} NaN/inf values at step {step} ({when}); nothing was saved "
                             f"from this model", fix="lower the learning rates or enable optimizer.grad_clip_norm")
