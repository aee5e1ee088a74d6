"""Value embeddings "VE" (docs/techniques.md#value-embeddings): a second, narrow token table projected to
the KV width and added to the attention values of chosen layers, each with its own gain (`attn.ve_layer_scale`).

Computed once per forward: scale * proj(table[ids]); table N(0, 0.01^2), scale 0.1. The projection is
zeroed but not flagged zero_init, so the orthogonal init pass overwrites it when both dims are >= 64.
"""

import torch
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import CONTROL, Role

VALUE_EMBED_TABLE = Role("embed", "embed", side="value_embed_table")
VALUE_EMBED_PROJECTION = Role("matrix", "other", side="value_embed_proj")


class ValueEmbedding(nn.Module):
    PARAM_ROLES = {"table.weight": VALUE_EMBED_TABLE, "proj.weight": VALUE_EMBED_PROJECTION, "scale": CONTROL}

    def __init__(self, vocab_size: int, dim: int, kv_dim: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, dim)
        nn.init.normal_(self.table.weight, std=0.01)
        self.proj = CastedLinear(dim, kv_dim, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.scale = nn.Parameter(torch.tensor(0.1, dtype=torch.float32))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.proj(self.table(ids))
        return self.scale.to(dtype=h.dtype) * h
