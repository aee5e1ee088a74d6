"""GPT's layers and layer loop for the options of the published stacks: those that change how layers connect
(value embeddings and the value residual: values handed from the embedding and the first layer to later layers;
document-isolated attention; the parallel residual forms: GPT-J, PR #1550's two lanes, the lane-mixing decoder of
golf.models.lane_mix; EBLS virtual layers, golf.models.ebls) and those inside a layer (LN scale, XSA, the
attention output gates, RoPE scaling: golf.models.stack_block, golf.models.stack_attention).

GPT imports this module only when one of them is configured (golf.models.gpt.uses_layer_stack): its own blocks
and loop are the baseline's U-Net. Here `stack_blocks` builds the blocks, and `add_layer_options` hands the whole
loop to `run_stack`, which is that loop with every option's step in place. The options' parameters are built in
the order the model always had them, so every preset keeps its parameter names, order and initial weights.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from golf.models.mlp import build_mlp
from golf.models.stack_attention import StackAttention
from golf.models.stack_block import StackBlock

if TYPE_CHECKING:  # a record's script builds the model from a plain namespace
    from golf.config.arch import ArchConfig
    from golf.models.gpt import GPT


def stack_blocks(cfg: ArchConfig, hidden: int, num_blocks: int) -> nn.ModuleList:
    """The blocks, each with the configured options of its attention and residual wiring."""
    dim = cfg.model_dim
    return nn.ModuleList(
        StackBlock(
            StackAttention(dim, cfg.num_heads, cfg.num_kv_heads, cfg.rope_base, cfg.qk_gain_init, cfg.rope_dims,
                           cfg.rope_ntk_train_len, xsa=i in cfg.xsa_layers, gate=cfg.attn_gate,
                           value_embed=bool(cfg.value_embed_dim) and i in cfg.value_embed_layers,
                           value_residual=cfg.value_residual and i > 0, rope_yarn_train_len=cfg.rope_yarn_train_len,
                           sparse_gate_window=cfg.gate_window if cfg.sparse_attn_gate else 0,
                           sparse_gate_scale=cfg.sparse_attn_gate_scale),
            build_mlp(cfg.mlp, dim, hidden, cfg.mlp_leaky_slope),
            dim,
            ln_factor=1.0 / math.sqrt(i + 1) if cfg.ln_scale else None,
            residual_params=not cfg.ebls_blocks,
        )
        for i in range(num_blocks)
    )


def add_layer_options(model: GPT, cfg: ArchConfig, num_blocks: int) -> None:
    """Build the configured options' modules on `model` and route its layer loop through `run_stack`."""
    model.bos_id, model.document_mask = cfg.bos_id, None
    if cfg.doc_attention:
        from golf.models.document_mask import document_causal_mask

        model.document_mask = document_causal_mask
    model.value_embed = None
    if cfg.value_embed_dim:
        from golf.models.value_embedding import ValueEmbedding

        kv_dim = cfg.num_kv_heads * (cfg.model_dim // cfg.num_heads)
        model.value_embed = ValueEmbedding(cfg.vocab_size, cfg.value_embed_dim, kv_dim)
    model.value_residual = cfg.value_residual
    model.parallel_residual, model.parallel_start = cfg.parallel_residual, cfg.parallel_start
    model.lane_merge = nn.Parameter(torch.tensor(0.5)) if cfg.parallel_residual == "two_lane" else None
    model.lane_mix = None
    if cfg.parallel_residual == "two_lane_mix":
        from golf.models.lane_mix import LaneMix

        model.lane_mix = LaneMix(num_blocks)
    if cfg.ebls_blocks:
        from golf.models.ebls import VirtualLayers

        model.virtual_layers = VirtualLayers(cfg.model_dim, cfg.ebls_rank, cfg.ebls_gamma_init, cfg.num_layers,
                                             cfg.ebls_penalty)
    model.stack = run_stack


def run_stack(model: GPT, x: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """The stream after the last layer, from the embedding stream `x` (GPT.hidden_states' loop, options in place)."""
    x0 = x
    ve = model.value_embed(input_ids) if model.value_embed is not None else None
    mask = model.document_mask(input_ids, model.bos_id) if model.document_mask is not None else None
    order = model.layer_order()
    num_encoder = len(order) // 2
    skips, lane1, v0 = [], None, None
    for depth, phys in enumerate(order):
        block = model.blocks[phys]
        if depth >= num_encoder:
            # The stream splits once, at the first decoder layer at or past parallel_start; x is lane0
            # from there on (skips go to it). PR #1855+ splits before that layer's skip, PR #1550 after it.
            split = lane1 is None and phys >= model.parallel_start
            if split and model.lane_mix is not None:
                lane1 = x
            if skips and depth - num_encoder < len(model.skip_weights):
                x = model.merge_skip(depth - num_encoder, x, skips.pop())
            if split and model.lane_merge is not None:
                lane1 = x
        if lane1 is not None and model.lane_mix is not None:
            a, m, v = block.lane_outputs(x, lane1, x0, ve, v0, mask)
            x, lane1 = model.lane_mix(phys, x, lane1, a, m)
        elif lane1 is not None:
            x, lane1, v = block.forward_two_lane(x, lane1, x0, ve, v0, mask)
        elif model.parallel_residual == "gptj" and phys >= model.parallel_start:
            x, v = block.forward_gptj(x, x0, ve, v0, mask)
        elif model.virtual_layers is not None:
            x, v = model.virtual_layers[depth](x, x0, block, ve, v0, mask)
        else:
            x, v = block(x, x0, ve, v0, mask)
        if model.value_residual and v0 is None:
            v0 = v
        if depth < num_encoder:
            skips.append(x)
    if lane1 is not None and model.lane_mix is not None:
        return model.lane_mix.merge(x, lane1)
    if lane1 is not None:
        m = model.lane_merge.to(dtype=x.dtype)
        return m * x + (1 - m) * lane1
    return x
