"""A pre-norm transformer block: residual wiring around an attention and an MLP sublayer.

Per-channel vectors as in the baseline: resid_mix (row 0 weighs the running stream, row 1 the
embedding stream x0; starts as pure residual), attn_scale and mlp_scale (init 1). The block of the
published stacks (LN scale, parallel residual forms, EBLS) is golf.models.stack_block.
"""

import torch
from torch import nn

from golf.models.layers import RMSNorm
from golf.models.roles import CONTROL


class Block(nn.Module):
    PARAM_ROLES = {"attn_scale": CONTROL, "mlp_scale": CONTROL, "resid_mix": CONTROL}

    def __init__(self, attn: nn.Module, mlp: nn.Module, dim: int):
        super().__init__()
        self.attn_norm = RMSNorm()
        self.mlp_norm = RMSNorm()
        self.attn = attn
        self.mlp = mlp
        self.attn_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))).float())

    def normed(self, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A sublayer's input (golf.models.stack_block scales it for LN scale)."""
        return norm(x)

    def mix(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        mix = self.resid_mix.to(dtype=x.dtype)
        return mix[0][None, None, :] * x + mix[1][None, None, :] * x0

    def mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp_scale.to(dtype=x.dtype)[None, None, :] * self.mlp(self.normed(self.mlp_norm, x))

    def forward(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        x = self.mix(x, x0)
        x = x + self.attn_scale.to(dtype=x.dtype)[None, None, :] * self.attn(self.normed(self.attn_norm, x))
        return x + self.mlp_branch(x)
