"""The orthogonal init pass of the 03-20 record lineage (docs/techniques.md#orthogonal-init), run after construction.

Every linear flagged zero_init stays zero; every other linear with both dims >= 64 gets orthogonal_(gain=1).
This also overwrites the constructor zeros of the BigramHash / value-embedding projections, as it does in
the sources. With `proj_scale` (arch.ortho_proj_scale) those side-table projections are then multiplied
by 1/sqrt(2 num_layers), as PR #589 / #484's final model does for every non-zero linear named `.proj`:
there, the attention and MLP output projections (also `.proj`) are zero-init, so the side-table
projections are exactly the ones the factor reaches. The banked stacks (PR #1019, resouer #6, PR #1550)
scale nothing, since there it only ever hit zero matrices.
"""

import math

import torch
from torch import nn

from golf.models.roles import parameter_roles

# A side table's projection to the model width: the only non-zero `.proj` linears that PR #589's init scales.
SIDE_PROJECTIONS = ("bigram_proj", "value_embed_proj")


@torch.no_grad()
def orthogonal_init_(model: nn.Module, proj_scale: bool = False) -> None:
    roles = parameter_roles(model)
    factor = 1.0 / math.sqrt(2 * len(model.blocks))
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not getattr(module, "zero_init", False) and min(module.weight.shape) >= 64:
            nn.init.orthogonal_(module.weight, gain=1.0)
            if proj_scale and roles[f"{name}.weight"].side in SIDE_PROJECTIONS:
                module.weight.mul_(factor)
