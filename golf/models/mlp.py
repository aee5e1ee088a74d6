"""Feed-forward blocks."""

import torch
from torch import nn

from golf.models.layers import CastedLinear


class ReluSquaredMLP(nn.Module):
    """proj(relu(fc(x))^2), the baseline MLP; the output projection starts at zero."""

    def __init__(self, dim: int, mlp_mult: int):
        super().__init__()
        hidden = mlp_mult * dim
        self.fc = CastedLinear(dim, hidden, bias=False)
        self.proj = CastedLinear(hidden, dim, bias=False)
        self.proj.zero_init = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.relu(self.fc(x)).square())
