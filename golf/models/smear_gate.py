"""SmearGate (docs/techniques.md#smeargate): a learned per-dimension blend of each position with the previous one,
x_t <- (1 - g) x_t + g x_{t-1}, g = sigmoid(gate), x_{-1} = 0.

The gate starts at `init_logit` (0: g = 0.5, the merged-record lineage; PR #484's EBLS keeps 95% of the
current position, keep-logit 3.0, i.e. init_logit -3.0). Where it sits (after the embedding's RMSNorm, or
before it as in PR #484's EBLS) is the model's choice (golf.models.gpt).

Document boundary fix: with a `bos_id` (arch.bos_mask, the default), a position holding BOS starts a new
document, so it blends with 0 exactly like position 0 and takes nothing from the previous document's last
token; with None (the seeds, which predate the fix) every position blends with the one before it.
"""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.roles import CONTROL


class SmearGate(nn.Module):
    PARAM_ROLES = {"gate": CONTROL}

    def __init__(self, dim: int, bos_id: int | None, init_logit: float = 0.0):
        super().__init__()
        self.bos_id = bos_id
        self.gate = nn.Parameter(torch.full((dim,), init_logit, dtype=torch.float32))

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate.to(dtype=x.dtype))[None, None, :]
        prev = F.pad(x[:, :-1], (0, 0, 1, 0))
        if self.bos_id is not None:
            prev = prev.masked_fill((ids == self.bos_id)[..., None], 0.0)
        return (1 - g) * x + g * prev
