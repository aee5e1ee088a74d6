"""Feed-forward blocks. Every variant's output projection is flagged zero_init (the model zeroes it), so a
fresh block adds nothing."""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import MLP_MATRIX, MLP_VECTOR


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


class StarReluMLP(nn.Module):
    """proj(scale * relu(fc(x))^2 + bias) with per-hidden-unit scale and bias vectors: the MLP that PR #462
    calls "SwiGLU" (no gate, no SiLU; Star-ReLU with vector instead of scalar s, b)."""

    PARAM_ROLES = {"fc.weight": MLP_MATRIX, "proj.weight": MLP_MATRIX, "scale": MLP_VECTOR, "bias": MLP_VECTOR}

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc = CastedLinear(dim, hidden, bias=False)
        self.proj = CastedLinear(hidden, dim, bias=False)
        self.proj.zero_init = True
        self.scale = nn.Parameter(torch.ones(hidden, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(hidden, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(x)).square()
        return self.proj(self.scale.to(dtype=h.dtype) * h + self.bias.to(dtype=h.dtype))


class SwiGLUMLP(nn.Module):
    """proj(silu(gate(x)) * fc(x)): the true gated SwiGLU (docs/techniques.md#mlp-variants, PR #484's variant)."""

    PARAM_ROLES = {"gate.weight": MLP_MATRIX, "fc.weight": MLP_MATRIX, "proj.weight": MLP_MATRIX}

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate = CastedLinear(dim, hidden, bias=False)
        self.fc = CastedLinear(dim, hidden, bias=False)
        self.proj = CastedLinear(hidden, dim, bias=False)
        self.proj.zero_init = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.silu(self.gate(x)) * self.fc(x))


def build_mlp(kind: str, dim: int, hidden: int, leaky_slope: float) -> nn.Module:
    if kind == "relu2":
        return ReluSquaredMLP(dim, hidden)
    if kind == "leaky_relu2":
        return ReluSquaredMLP(dim, hidden, leaky_slope)
    if kind == "star_relu":
        return StarReluMLP(dim, hidden)
    if kind == "swiglu":
        return SwiGLUMLP(dim, hidden)
    raise ValueError(f"unknown MLP kind {kind!r}; choose relu2, leaky_relu2, star_relu or swiglu")
