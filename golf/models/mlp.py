"""Feed-forward blocks: the baseline's, and the choice of variant (golf.models.star_relu, golf.models.swiglu).
Every variant's output projection is flagged zero_init (the model zeroes it), so a fresh block adds nothing."""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import MLP_MATRIX


class ReluSquaredMLP(nn.Module):
    """proj(relu(fc(x))^2), the baseline MLP; negative_slope > 0 gives LeakyReLU(slope)^2
    (docs/techniques.md#mlp-variants)."""

    PARAM_ROLES = {"fc.weight": MLP_MATRIX, "proj.weight": MLP_MATRIX}

    def __init__(self, dim: int, hidden: int, negative_slope: float = 0.0):
        super().__init__()
        self.negative_slope = negative_slope
        self.fc = CastedLinear(dim, hidden, bias=False)
        self.proj = CastedLinear(hidden, dim, bias=False)
        self.proj.zero_init = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h = F.leaky_relu(h, self.negative_slope) if self.negative_slope else torch.relu(h)
        return self.proj(h.square())


def build_mlp(kind: str, dim: int, hidden: int, leaky_slope: float) -> nn.Module:
    if kind == "relu2":
        return ReluSquaredMLP(dim, hidden)
    if kind == "leaky_relu2":
        return ReluSquaredMLP(dim, hidden, leaky_slope)
    if kind == "star_relu":  # the variants are imported when used, so a record embeds only its own
        from golf.models.star_relu import StarReluMLP

        return StarReluMLP(dim, hidden)
    if kind == "swiglu":
        from golf.models.swiglu import SwiGLUMLP

        return SwiGLUMLP(dim, hidden)
    raise ValueError(f"unknown MLP kind {kind!r}; choose relu2, leaky_relu2, star_relu or swiglu")
