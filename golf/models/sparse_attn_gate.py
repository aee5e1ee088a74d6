"""SparseAttnGate (PR #1787, in every record from #1855 to #2135): a per-head sigmoid gate on the attention
output, read from a narrow window of the attention input.

    y_h(t) <- sigmoid(scale * w_h . x(t)[:window]) * y_h(t)

x is the attention's input (the normed, LN-scaled block stream), w has one row of `window` weights per
head (8 x 12 = 96 weights per layer in the records, against 8 x 512 for a dense gate). w starts at zero,
so every head starts at half strength (sigmoid(0) = 0.5); the block's attn_scale absorbs the factor.
Each position gates with its own features only, so the gate is causal and never crosses a document.
"""

import torch
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import Role

# The per-head weights: Adam like a control tensor, but a category of their own so the export can store them at
# quant.bits_gate (int8 in the records) whatever their size.
ATTN_GATE = Role("scalar", "gate")


class SparseAttnGate(nn.Module):
    PARAM_ROLES = {"proj.weight": ATTN_GATE}

    def __init__(self, num_heads: int, window: int, scale: float):
        super().__init__()
        self.window, self.scale = window, scale
        self.proj = CastedLinear(window, num_heads, bias=False)
        self.proj.zero_init = True

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """y: [B, H, T, hd] head outputs, x: [B, T, dim] attention input -> gated y."""
        g = torch.sigmoid(self.scale * self.proj(x[..., : self.window]))  # [B, T, H]
        return y * g.transpose(1, 2)[..., None]
