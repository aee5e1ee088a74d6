"""The block of golf.models.layer_stack: golf.models.block's, with what the published stacks change.

`ln_factor` is the LN scale 1/sqrt(layer + 1) of docs/techniques.md#ln-scale (None: off), fixed by the block's
physical index so a reused block keeps its factor. The attention (golf.models.stack_attention) takes the value
embedding, the first layer's values and the optional attention mask, and hands back its raw values. The residual
forms share the sublayers: sequential (the baseline's), GPT-J parallel (both read the same input), the two-lane
form of PR #1550 (docs/techniques.md#parallel-residuals) and the two sublayer outputs that golf.models.lane_mix
writes into both lanes. With residual_params=False (EBLS shared blocks) the per-layer vectors live in each
virtual layer (golf.models.ebls) instead.
"""

import torch
from torch import nn

from golf.models.block import Block


class StackBlock(Block):
    def __init__(self, attn: nn.Module, mlp: nn.Module, dim: int, ln_factor: float | None = None,
                 residual_params: bool = True):
        super().__init__(attn, mlp, dim)
        if not residual_params:
            del self.attn_scale, self.mlp_scale, self.resid_mix
        self.ln_factor = ln_factor

    def normed(self, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        h = norm(x)
        return h * self.ln_factor if self.ln_factor is not None else h

    def attn_branch(self, x: torch.Tensor, ve=None, v0=None, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        y, v = self.attn(self.normed(self.attn_norm, x), ve, v0, mask)
        return self.attn_scale.to(dtype=x.dtype)[None, None, :] * y, v

    def forward(self, x: torch.Tensor, x0: torch.Tensor, ve=None, v0=None,
                mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequential residual; returns (stream, raw attention values)."""
        x = self.mix(x, x0)
        y, v = self.attn_branch(x, ve, v0, mask)
        x = x + y
        return x + self.mlp_branch(x), v

    def forward_gptj(self, x: torch.Tensor, x0: torch.Tensor, ve=None, v0=None,
                     mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.mix(x, x0)
        y, v = self.attn_branch(x, ve, v0, mask)
        return x + y + self.mlp_branch(x), v

    def forward_two_lane(self, lane0: torch.Tensor, lane1: torch.Tensor, x0: torch.Tensor, ve=None, v0=None,
                         mask=None):
        """Attention updates lane0 (with the x0 mix), the MLP updates lane1 from lane1 alone: the MLPs of
        two-lane layers never see these layers' attention output. Returns (lane0, lane1, raw values)."""
        a = self.mix(lane0, x0)
        y, v = self.attn_branch(a, ve, v0, mask)
        return a + y, lane1 + self.mlp_branch(lane1), v

    def lane_outputs(self, lane0: torch.Tensor, lane1: torch.Tensor, x0: torch.Tensor, ve=None, v0=None,
                     mask=None):
        """The attention output read from mix(lane0, x0) and the MLP output read from lane1, both scaled,
        for golf.models.lane_mix to write into the lanes. Returns (attention out, MLP out, raw values)."""
        y, v = self.attn_branch(self.mix(lane0, x0), ve, v0, mask)
        return y, self.mlp_branch(lane1), v
