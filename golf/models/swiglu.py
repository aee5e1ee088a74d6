"""The gated SwiGLU feed-forward block (`arch.mlp=swiglu`)."""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import MLP_MATRIX


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
