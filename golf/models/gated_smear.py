"""Content-gated SmearGate (PR #1667 / modded-nanogpt, in every record from #1797 to #2135): each token
embedding takes in a share of the previous one, the share read from its own first `window` features.

    x_t <- x_t + lam * sigmoid(w . x_t[:window]) * x_{t-1} * [token t is not BOS]

applied to the raw token embedding, before the embedding RMSNorm. w (window weights) and the scalar lam
start at zero, so the gate starts closed. A BOS starts a new document and takes nothing from the
previous document's last token (the BOS fix of PR #1855; position 0 has no predecessor either).
golf.models.smear_gate is the older static form (a per-channel blend after the norm).
"""

import torch
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import CONTROL


class GatedSmear(nn.Module):
    PARAM_ROLES = {"gate.weight": CONTROL, "lam": CONTROL}

    def __init__(self, window: int, bos_id: int):
        super().__init__()
        self.window, self.bos_id = window, bos_id
        self.gate = CastedLinear(window, 1, bias=False)
        self.gate.zero_init = True
        self.lam = nn.Parameter(torch.zeros(1, dtype=torch.float32))

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        g = self.lam.to(dtype=x.dtype) * torch.sigmoid(self.gate(x[:, 1:, : self.window]))
        prev = x[:, :-1] * (ids[:, 1:] != self.bos_id).to(x.dtype)[..., None]
        return torch.cat([x[:, :1], x[:, 1:] + g * prev], dim=1)
