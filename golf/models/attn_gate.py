"""The per-head sigmoid gate on the attention output (`arch.attn_gate`, docs/techniques.md#attention-output-gate)."""

import torch
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import CONTROL


class AttnGate(CastedLinear):
    """gate(x) = sigmoid(W x + b) per head, multiplied into that head's output: zero weight, bias 4, so it
    starts near open."""

    PARAM_ROLES = {"weight": CONTROL, "bias": CONTROL}

    def __init__(self, dim: int, num_heads: int):
        super().__init__(dim, num_heads, bias=True)
        self.zero_init = True
        nn.init.constant_(self.bias, 4.0)

    def gated(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """y: [B, H, T, hd] the heads' outputs for the input x: [B, T, dim]."""
        return y * torch.sigmoid(self(x)).transpose(1, 2)[..., None]
