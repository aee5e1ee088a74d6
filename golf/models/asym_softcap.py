"""AsymLogit (PR #1923, in #1945 and #2135): the tanh logit soft-cap with its own learnable cap per sign.

    cap(z) = c+ tanh(z / c+)  for z >= 0,    c- tanh(z / c-)  for z < 0

Both caps start at arch.logit_softcap, where this is exactly the symmetric cap. As in the records, the
two scalars get no gradient in training (requires_grad is off, so the optimizer split leaves them out and
training computes what the symmetric cap computes); test-time training is what moves them, and the
artifact stores them like any control tensor.
"""

import torch
from torch import nn

from golf.models.roles import CONTROL


class AsymmetricSoftcap(nn.Module):
    PARAM_ROLES = {"pos": CONTROL, "neg": CONTROL}

    def __init__(self, cap: float):
        super().__init__()
        self.pos = nn.Parameter(torch.tensor(float(cap)), requires_grad=False)
        self.neg = nn.Parameter(torch.tensor(float(cap)), requires_grad=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        pos, neg = self.pos.to(logits.dtype), self.neg.to(logits.dtype)
        return torch.where(logits >= 0, pos * torch.tanh(logits / pos), neg * torch.tanh(logits / neg))
