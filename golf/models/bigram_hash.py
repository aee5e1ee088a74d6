"""BigramHash (docs/techniques.md#bigramhash): a hashed embedding of (previous token, current token) added to the token
embedding, table [K, dim] projected to the model width.

Hashes: "mult" = (prev * mult + cur) mod K (PR #462: mult 1009; PR #484's EBLS: 104729); "xor" =
(36313 cur XOR 27191 prev) mod (K - 1) with bucket K - 1 reserved (the merged-record lineage). Position 0
has no previous token: "mult" hashes it with prev = 0, "xor" sends it to the reserved bucket. With a
`bos_id` (arch.bos_mask, the default), a BOS token that starts a new document is treated the same way, so
nothing leaks across a document boundary; without one (None, as in the seeds) only position 0 is.
"""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import Role

BIGRAM_TABLE = Role("embed", "embed", embedding=True, side="bigram_table")
BIGRAM_PROJECTION = Role("matrix", "other", embedding=True, side="bigram_proj")
BIGRAM_SCALE = Role("scalar", "other", control=True, embedding=True)


def bigram_buckets(ids: torch.Tensor, buckets: int, kind: str, bos_id: int | None, mult: int = 1009) -> torch.Tensor:
    cur = ids.long()
    prev = F.pad(cur[..., :-1], (1, 0))
    starts = torch.zeros_like(cur, dtype=torch.bool)
    starts[..., 0] = True
    if bos_id is not None:
        starts |= cur == bos_id
    if kind == "mult":
        return (prev.masked_fill(starts, 0) * mult + cur) % buckets
    hashed = torch.bitwise_xor(36313 * cur, 27191 * prev) % (buckets - 1)
    return hashed.masked_fill(starts, buckets - 1)


class BigramHash(nn.Module):
    PARAM_ROLES = {"table.weight": BIGRAM_TABLE, "proj.weight": BIGRAM_PROJECTION, "scale": BIGRAM_SCALE}

    def __init__(self, buckets: int, dim: int, model_dim: int, kind: str, init_std: float, scale_init: float,
                 bos_id: int | None, mult: int = 1009):
        super().__init__()
        self.buckets, self.kind, self.bos_id, self.mult = buckets, kind, bos_id, mult
        self.table = nn.Embedding(buckets, dim)
        if init_std > 0:
            nn.init.normal_(self.table.weight, std=init_std)
        else:
            nn.init.zeros_(self.table.weight)
        # Zeroed here but not flagged zero_init: the orthogonal init pass overwrites it, as in the sources.
        self.proj = CastedLinear(dim, model_dim, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.scale = nn.Parameter(torch.tensor(scale_init, dtype=torch.float32)) if scale_init > 0 else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.proj(self.table(bigram_buckets(ids, self.buckets, self.kind, self.bos_id, self.mult)))
        return h * self.scale.to(dtype=h.dtype) if self.scale is not None else h
