"""The two-lane parallel decoder with learned lane mixing (PR #1530, in every record from #1855 to #2135).

From the first decoder layer at or past arch.parallel_start the stream splits into lane0 = lane1 = x.
In each such layer the attention reads mix(lane0, x0) (the block's resid_mix), the MLP reads lane1, and
both outputs are written back into both lanes with learned weights:

    lane0 <- r0 lane0 + p[attn, 0] a + p[mlp, 0] m
    lane1 <- r1 lane1 + p[attn, 1] a + p[mlp, 1] m

r (per layer and lane) starts at 1.1, p (per layer, source and lane) at 1. The final hidden state is the
mean of the two lanes. The weights exist for every physical layer (as in the records, whose parameter
count includes them) and are indexed by physical block, so a looped block reuses its own.
golf.models.block's `two_lane` is PR #1550's simpler form (no cross-lane writes, a learned final blend).
"""

import torch
from torch import nn

from golf.models.roles import CONTROL

RESID_INIT = 1.1


class LaneMix(nn.Module):
    PARAM_ROLES = {"resid": CONTROL, "post": CONTROL}

    def __init__(self, num_layers: int):
        super().__init__()
        self.resid = nn.Parameter(torch.full((num_layers, 2), RESID_INIT, dtype=torch.float32))
        self.post = nn.Parameter(torch.ones(num_layers, 2, 2, dtype=torch.float32))  # [layer, attn|mlp, lane]

    def forward(self, layer: int, lane0: torch.Tensor, lane1: torch.Tensor, attn_out: torch.Tensor,
                mlp_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r, p = self.resid[layer].to(dtype=lane0.dtype), self.post[layer].to(dtype=lane0.dtype)
        return (r[0] * lane0 + p[0, 0] * attn_out + p[1, 0] * mlp_out,
                r[1] * lane1 + p[0, 1] * attn_out + p[1, 1] * mlp_out)

    @staticmethod
    def merge(lane0: torch.Tensor, lane1: torch.Tensor) -> torch.Tensor:
        return 0.5 * (lane0 + lane1)
