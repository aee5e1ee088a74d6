"""SmearGate (docs/techniques.md#smeargate): a learned per-dimension blend of each position with the previous one,
x_t <- (1 - g) x_t + g x_{t-1}, g = sigmoid(gate) (init 0.5), x_{-1} = 0.

Document boundary fix: a position holding BOS starts a new document, so it blends with 0 exactly like
position 0 and takes nothing from the previous document's last token.
"""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.roles import CONTROL


class SmearGate(nn.Module):
    PARAM_ROLES = {"gate": CONTROL}

    def __init__(self, dim: int, bos_id: int):
        super().__init__()
        self.bos_id = bos_id
        self.gate = nn.Parameter(torch.zeros(dim, dtype=torch.float32))

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate.to(dtype=x.dtype))[None, None, :]
        prev = F.pad(x[:, :-1], (0, 0, 1, 0)).masked_fill((ids == self.bos_id)[..., None], 0.0)
        return (1 - g) * x + g * prev
