"""A pre-norm transformer block: residual wiring around an attention and an MLP sublayer.

Per-channel vectors as in the baseline: resid_mix (row 0 weighs the running stream, row 1 the
embedding stream x0; starts as pure residual), attn_scale and mlp_scale (init 1). `ln_factor` is the
LN scale 1/sqrt(layer + 1) of docs/techniques.md#ln-scale (None: off), fixed by the block's physical index so a
reused block keeps its factor. Three residual forms share the sublayers: sequential (the baseline),
GPT-J parallel (both read the same input) and the two-lane form of PR #1550 (docs/techniques.md#parallel-residuals).
With residual_params=False (EBLS shared blocks) the per-layer vectors live in each virtual layer instead.
"""

import torch
from torch import nn

from golf.models.layers import RMSNorm
from golf.models.roles import CONTROL


class Block(nn.Module):
    PARAM_ROLES = {"attn_scale": CONTROL, "mlp_scale": CONTROL, "resid_mix": CONTROL}

    def __init__(self, attn: nn.Module, mlp: nn.Module, dim: int, ln_factor: float | None = None,
                 residual_params: bool = True):
        super().__init__()
        self.attn_norm = RMSNorm()
        self.mlp_norm = RMSNorm()
        self.attn = attn
        self.mlp = mlp
        if residual_params:
            self.attn_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
            self.mlp_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
            self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))).float())
        self.ln_factor = ln_factor

    def normed(self, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        h = norm(x)
        return h * self.ln_factor if self.ln_factor is not None else h

    def mix(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        mix = self.resid_mix.to(dtype=x.dtype)
        return mix[0][None, None, :] * x + mix[1][None, None, :] * x0

    def attn_branch(self, x: torch.Tensor, ve=None, v0=None) -> tuple[torch.Tensor, torch.Tensor]:
        y, v = self.attn(self.normed(self.attn_norm, x), ve, v0)
        return self.attn_scale.to(dtype=x.dtype)[None, None, :] * y, v

    def mlp_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp_scale.to(dtype=x.dtype)[None, None, :] * self.mlp(self.normed(self.mlp_norm, x))

    def forward(self, x: torch.Tensor, x0: torch.Tensor, ve=None, v0=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequential residual; returns (stream, raw attention values)."""
        x = self.mix(x, x0)
        y, v = self.attn_branch(x, ve, v0)
        x = x + y
        return x + self.mlp_branch(x), v

    def forward_gptj(self, x: torch.Tensor, x0: torch.Tensor, ve=None, v0=None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.mix(x, x0)
        y, v = self.attn_branch(x, ve, v0)
        return x + y + self.mlp_branch(x), v

    def forward_two_lane(self, lane0: torch.Tensor, lane1: torch.Tensor, x0: torch.Tensor, ve=None, v0=None):
        """Attention updates lane0 (with the x0 mix), the MLP updates lane1 from lane1 alone: the MLPs of
        two-lane layers never see these layers' attention output. Returns (lane0, lane1, raw values)."""
        a = self.mix(lane0, x0)
        y, v = self.attn_branch(a, ve, v0)
        return a + y, lane1 + self.mlp_branch(lane1), v
