"""Causal self-attention: grouped-query heads, QK-norm with a learnable per-head query gain, (partial) RoPE.
The published stacks' options on top of it (value embedding and residual, XSA, output gates, document mask,
RoPE scaling) are golf.models.stack_attention."""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.layers import CastedLinear, Rotary, apply_rotary
from golf.models.roles import ATTN_MATRIX, CONTROL


class CausalSelfAttention(nn.Module):
    PARAM_ROLES = {"c_q.weight": ATTN_MATRIX, "c_k.weight": ATTN_MATRIX, "c_v.weight": ATTN_MATRIX,
                   "proj.weight": ATTN_MATRIX, "q_gain": CONTROL}

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, rope_base: float, qk_gain_init: float,
                 rope_dims: int = 0):
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = dim // num_heads
        kv_dim = num_kv_heads * self.head_dim
        self.c_q = CastedLinear(dim, dim, bias=False)
        self.c_k = CastedLinear(dim, kv_dim, bias=False)
        self.c_v = CastedLinear(dim, kv_dim, bias=False)
        self.proj = CastedLinear(dim, dim, bias=False)
        self.proj.zero_init = True
        # q and k are unit-RMS after QK-norm, so this gain sets the initial attention temperature.
        self.q_gain = nn.Parameter(torch.full((num_heads,), qk_gain_init, dtype=torch.float32))
        self.rope_dims = rope_dims if 0 < rope_dims < self.head_dim else 0
        self.rotary = Rotary(self.rope_dims or self.head_dim, base=rope_base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k = self.queries_keys(x)
        y, _ = self.attend(q, k, self.c_v(x))
        return self.merge(y)

    def queries_keys(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q [B, H, T, hd] and k [B, Hkv, T, hd] of the input x: projected, QK-normed, rotated, q times its gain.
        Callers project the values after them: x's gradient sums its three uses in that order."""
        bsz, seqlen, _ = x.shape
        q = self.c_q(x).reshape(bsz, seqlen, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).reshape(bsz, seqlen, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = F.rms_norm(q, (q.size(-1),))
        k = F.rms_norm(k, (k.size(-1),))
        cos, sin = self.rotary(seqlen, x.device, q.dtype)
        q = apply_rotary(q, cos, sin, self.rope_dims)
        k = apply_rotary(k, cos, sin, self.rope_dims)
        return q * self.q_gain.to(dtype=q.dtype)[None, :, None, None], k

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-head outputs [B, H, T, hd], the values split into KV heads [B, Hkv, T, hd]) for the values
        v [B, T, kv_dim] (`c_v(x)`, or what an option made of it), under the causal mask or the boolean `mask`."""
        bsz, _, seqlen, _ = q.shape
        v = v.reshape(bsz, seqlen, self.num_kv_heads, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, enable_gqa=self.num_kv_heads != self.num_heads
        )
        return y, v

    def merge(self, y: torch.Tensor) -> torch.Tensor:
        """The output projection of the heads' outputs [B, H, T, hd]."""
        bsz, _, seqlen, _ = y.shape
        return self.proj(y.transpose(1, 2).contiguous().reshape(bsz, seqlen, self.num_heads * self.head_dim))
