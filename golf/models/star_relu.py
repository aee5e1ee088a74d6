"""The Star-ReLU feed-forward block (`arch.mlp=star_relu`, PR #462)."""

import torch
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import MLP_MATRIX, Role

MLP_VECTOR = Role("scalar", "mlp")


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
