"""The attention of golf.models.layer_stack: golf.models.attention's, plus the options of the published stacks,
each built only when configured: XSA, the attention output gate, SparseAttnGate, the value embedding's gain, the
value residual, RoPE scaling (golf.models.rope_scaling) and the document mask the layer loop passes in."""

import torch
from torch import nn

from golf.models.attention import CausalSelfAttention
from golf.models.roles import CONTROL


class StackAttention(CausalSelfAttention):
    """forward(x, ve, v0, mask) -> (output, raw values). The raw values (after the value embedding, before the
    value-residual blend) are what the first layer hands to later layers as v0."""

    PARAM_ROLES = {**CausalSelfAttention.PARAM_ROLES, "ve_layer_scale": CONTROL, "vrl_lambda": CONTROL}

    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, rope_base: float, qk_gain_init: float,
                 rope_dims: int = 0, rope_ntk_train_len: int = 0, xsa: bool = False, gate: bool = False,
                 value_embed: bool = False, value_residual: bool = False, rope_yarn_train_len: int = 0,
                 sparse_gate_window: int = 0, sparse_gate_scale: float = 1.0):
        super().__init__(dim, num_heads, num_kv_heads, rope_base, qk_gain_init, rope_dims)
        # The options' modules are imported only when configured, so a record's script embeds what it uses.
        if rope_ntk_train_len or rope_yarn_train_len:  # the tables hold no weights: replacing them changes nothing else
            from golf.models.rope_scaling import ScaledRotary

            self.rotary = ScaledRotary(self.rope_dims or self.head_dim, rope_base, rope_ntk_train_len,
                                       rope_yarn_train_len)
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
        q, k = self.queries_keys(x)
        raw_v = self.c_v(x)
        if self.ve_layer_scale is not None:
            raw_v = raw_v + self.ve_layer_scale.to(dtype=raw_v.dtype) * ve
        v = raw_v
        if self.vrl_lambda is not None and v0 is not None:
            lam = self.vrl_lambda.to(dtype=v.dtype)
            v = lam[0] * v0 + lam[1] * v
        y, v = self.attend(q, k, v, mask)
        if self.xsa is not None:
            y = self.xsa(y, v)
        if self.attn_gate is not None:
            y = self.attn_gate.gated(y, x)
        if self.sparse_gate is not None:
            y = self.sparse_gate(y, x)
        return self.merge(y), raw_v
