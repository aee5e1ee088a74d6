"""Causal self-attention: grouped-query heads, QK-norm with a learnable per-head query gain, (partial) RoPE,
and the optional XSA, output gate, SparseAttnGate, value embedding and value residual of the published stacks.
An optional boolean mask (golf.models.document_mask) replaces the plain causal mask."""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.layers import CastedLinear, Rotary, apply_rotary
from golf.models.roles import ATTN_MATRIX, CONTROL


class CausalSelfAttention(nn.Module):
    """forward(x, ve, v0) -> (output, raw values). The raw values (after the value embedding, before the
    value-residual blend) are what the first layer hands to later layers as v0."""

    PARAM_ROLES = {"c_q.weight": ATTN_MATRIX, "c_k.weight": ATTN_MATRIX, "c_v.weight": ATTN_MATRIX,
                   "proj.weight": ATTN_MATRIX, "q_gain": CONTROL, "ve_layer_scale": CONTROL, "vrl_lambda": CONTROL}

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, rope_base: float, qk_gain_init: float,
                 rope_dims: int = 0, rope_ntk_train_len: int = 0, xsa: bool = False, gate: bool = False,
                 value_embed: bool = False, value_residual: bool = False, rope_yarn_train_len: int = 0,
                 sparse_gate_window: int = 0, sparse_gate_scale: float = 1.0):
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
        self.rotary = Rotary(self.rope_dims or self.head_dim, base=rope_base, ntk_train_len=rope_ntk_train_len,
                             yarn_train_len=rope_yarn_train_len)
        # The options' modules are imported only when configured, so a record's script embeds what it uses.
        self.xsa = None
        if xsa:
            from golf.models.xsa import exclude_self_value

            self.xsa = exclude_self_value
        self.attn_gate = None
        if gate:
            from golf.models.attn_gate import AttnGate

            self.attn_gate = AttnGate(dim, num_heads)
        self.sparse_gate = None
        if sparse_gate_window:
            from golf.models.sparse_attn_gate import SparseAttnGate

            self.sparse_gate = SparseAttnGate(num_heads, sparse_gate_window, sparse_gate_scale)
        self.ve_layer_scale = nn.Parameter(torch.ones(1, dtype=torch.float32)) if value_embed else None
        # v = l0 * v0 + l1 * v, starting almost at the layer's own values (docs/techniques.md#value-residual).
        self.vrl_lambda = nn.Parameter(torch.tensor([0.01, 0.99])) if value_residual else None

    def forward(self, x: torch.Tensor, ve: torch.Tensor | None = None, v0: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        bsz, seqlen, dim = x.shape
        q = self.c_q(x).reshape(bsz, seqlen, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).reshape(bsz, seqlen, self.num_kv_heads, self.head_dim).transpose(1, 2)
        raw_v = self.c_v(x)
        if self.ve_layer_scale is not None:
            raw_v = raw_v + self.ve_layer_scale.to(dtype=raw_v.dtype) * ve
        v = raw_v
        if self.vrl_lambda is not None and v0 is not None:
            lam = self.vrl_lambda.to(dtype=v.dtype)
            v = lam[0] * v0 + lam[1] * v
        v = v.reshape(bsz, seqlen, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = F.rms_norm(q, (q.size(-1),))
        k = F.rms_norm(k, (k.size(-1),))
        cos, sin = self.rotary(seqlen, x.device, q.dtype)
        q = apply_rotary(q, cos, sin, self.rope_dims)
        k = apply_rotary(k, cos, sin, self.rope_dims)
        q = q * self.q_gain.to(dtype=q.dtype)[None, :, None, None]
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None, enable_gqa=self.num_kv_heads != self.num_heads
        )
        if self.xsa is not None:
            y = self.xsa(y, v)
        if self.attn_gate is not None:
            y = self.attn_gate.gated(y, x)
        if self.sparse_gate is not None:
            y = self.sparse_gate(y, x)
        y = y.transpose(1, 2).contiguous().reshape(bsz, seqlen, dim)
        return self.proj(y), raw_v
