"""Muon's options on top of the baseline's (golf.optim.muon; each off by default): MuonEq-R row normalisation,
the Polar Express per-step coefficients (golf.optim.polar_express), and decoupled weight decay before or after
the update. build_optimizers uses this Muon only when one of them is on.

Two details differ between the sources and are options here: modded-nanogpt's Polar Express divides
the update by 1.02 x its norm (headroom for bf16 rounding) while PR #1550 divides by the norm alone
(`pe_safety=1.0`); and PR #1550 row-normalizes after transposing a tall matrix to its wide orientation,
i.e. it normalizes the columns of the MLP-up matrices (`row_norm_axis="transposed"`), where the MuonEq-R
paper and the 04-09 record normalize the rows as stored (`"rows"`).
"""

import torch

from golf.optim.muon import NS5_COEFFS, Muon


def coefficient_schedule(kind: str, steps: int) -> tuple[tuple[float, float, float], ...]:
    """The (a, b, c) of every iteration for `optimizer.muon_coeffs`."""
    if kind == "polar_express":
        from golf.optim.polar_express import polar_express_schedule  # only runs that use it embed it

        return polar_express_schedule(steps)
    return (NS5_COEFFS,) * steps


class MuonWithOptions(Muon):
    def __init__(self, params, lr: float, momentum: float, backend_steps: int, nesterov: bool = True,
                 coeffs: str = "ns5", row_norm: bool = False, row_norm_axis: str = "rows", pe_safety: float = 1.02,
                 weight_decay: float = 0.0, wd_order: str = "before", compiled: bool = False):
        coefficient_schedule(coeffs, backend_steps)  # fail at construction, not at the first step
        super().__init__(params, lr, momentum, backend_steps, nesterov, compiled,
                         dict(coeffs=coeffs, row_norm=row_norm, row_norm_axis=row_norm_axis, pe_safety=pe_safety,
                              weight_decay=weight_decay, wd_order=wd_order))

    def coefficients(self, group: dict) -> tuple[tuple[float, float, float], ...]:
        return coefficient_schedule(group["coeffs"], group["backend_steps"])

    def _update(self, p: torch.Tensor, group: dict, coeffs) -> torch.Tensor:
        grad = self._momentum(p, group)
        if group["row_norm"]:
            tall = grad.size(-2) > grad.size(-1)
            axis = -2 if group["row_norm_axis"] == "transposed" and tall else -1
            grad = grad / grad.norm(dim=axis, keepdim=True).clamp_min(1e-7)
        safety = group["pe_safety"] if group["coeffs"] == "polar_express" else 1.0
        return self._orthogonalized(grad, coeffs, safety)

    @staticmethod
    def _apply(p: torch.Tensor, update: torch.Tensor, group: dict) -> None:
        """Muon's step with decoupled weight decay before or after it when on."""
        decays = group["weight_decay"] > 0 and p.grad is not None
        if decays and group["wd_order"] == "before":
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
        Muon._apply(p, update, group)
        if decays and group["wd_order"] == "after":
            p.mul_(1.0 - group["lr"] * group["weight_decay"])
