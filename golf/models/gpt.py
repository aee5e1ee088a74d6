"""The GPT of every golf architecture; with its defaults, the official naive baseline
(openai/parameter-golf `train_gpt.py`), written plainly.

Embedding -> RMSNorm -> x0; a U-Net of pre-norm blocks (the first half of the virtual layers push
skips, the second half pop them through learned per-channel weights); each block re-mixes the
embedding stream x0 into its input; tied output head with a tanh logit soft-cap. Module construction
order matches the baseline, and options left at their defaults build nothing and draw no random
numbers, so the same seed gives the baseline's initial weights bit for bit.

Options (docs/techniques.md#architecture; each a small module of golf.models): MLP variant and width, partial
RoPE (+ NTK or YaRN scaling), document-isolated attention, XSA, attention output gate, SparseAttnGate,
value embeddings, value residual, BigramHash, SmearGate (static or content-gated), AsymLogit soft-cap,
sigmoid-gated skips, LN scale, depth recurrence, parallel residuals (incl. the lane-mixing decoder), EBLS
layer sharing, orthogonal init. Layer lists (xsa_layers, value_embed_layers) index physical blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.attention import CausalSelfAttention
from golf.models.block import Block
from golf.models.layers import CastedLinear, RMSNorm
from golf.models.mlp import build_mlp
from golf.models.roles import CONTROL, OUTPUT_HEAD, TOKEN_EMBEDDING

if TYPE_CHECKING:  # a record's script builds the model from a plain namespace
    from golf.config.arch import ArchConfig


def uses_layer_stack(cfg: ArchConfig) -> bool:
    """Whether the options change the layers or how they connect (golf.models.layer_stack builds and runs them)."""
    return bool(cfg.value_embed_dim or cfg.value_residual or cfg.doc_attention or cfg.parallel_residual != "none"
                or cfg.ebls_blocks or cfg.ln_scale or cfg.xsa_layers or cfg.attn_gate or cfg.sparse_attn_gate
                or cfg.rope_ntk_train_len or cfg.rope_yarn_train_len)


class GPT(nn.Module):
    PARAM_ROLES = {"tok_emb.weight": TOKEN_EMBEDDING, "lm_head.weight": OUTPUT_HEAD, "skip_weights": CONTROL,
                   "skip_gates": CONTROL, "lane_merge": CONTROL}

    def __init__(self, cfg: ArchConfig):
        super().__init__()
        dim = cfg.model_dim
        self.tie_embeddings = cfg.tie_embeddings
        self.tied_embed_init_std = cfg.tied_embed_init_std
        self.logit_softcap = cfg.logit_softcap
        self.tok_emb = nn.Embedding(cfg.vocab_size, dim)
        # U-Net halves over the virtual layers without recurrence (EBLS: all of them); recurrence adds
        # layers but no skip weights (PR #1550), so only the first decoder layers receive skips; with
        # virtual_skips the skips are sized by the looped depth instead (PR #1855+).
        self.num_encoder_layers = cfg.num_layers // 2
        self.num_decoder_layers = cfg.num_layers - self.num_encoder_layers
        depth = cfg.num_layers
        if cfg.virtual_skips:  # imported only when configured, so a record's script embeds what it uses
            from golf.models.recurrence import virtual_depth

            depth = virtual_depth(cfg)
        num_skips = min(depth // 2, depth - depth // 2)
        self.skip_weights = nn.Parameter(torch.ones(num_skips, dim, dtype=torch.float32))
        num_blocks = cfg.ebls_blocks or cfg.num_layers
        hidden = cfg.mlp_hidden or cfg.mlp_mult * dim
        stacked = uses_layer_stack(cfg)
        if stacked:  # imported only when configured, so a record's script embeds what it uses
            from golf.models.layer_stack import add_layer_options, stack_blocks

            self.blocks = stack_blocks(cfg, hidden, num_blocks)
        else:
            self.blocks = nn.ModuleList(
                Block(CausalSelfAttention(dim, cfg.num_heads, cfg.num_kv_heads, cfg.rope_base, cfg.qk_gain_init,
                                          cfg.rope_dims),
                      build_mlp(cfg.mlp, dim, hidden, cfg.mlp_leaky_slope), dim)
                for _ in range(num_blocks)
            )
        self.final_norm = RMSNorm()
        self.lm_head = None if cfg.tie_embeddings else CastedLinear(dim, cfg.vocab_size, bias=False)
        if self.lm_head is not None:
            self.lm_head.zero_init = True
        # Every option's module is imported only when configured (a record's script embeds what it uses) and
        # builds its parameters in this order, which keeps every preset's parameter order and initial weights.
        self.bigram = self.smear = self.gated_smear = self.mixed_embedding = None
        if cfg.bigram_buckets or cfg.smear or cfg.gated_smear:
            from golf.models.token_mixing import add_token_mixers

            add_token_mixers(self, cfg)
        self.softcap = None
        if cfg.asym_softcap:
            from golf.models.asym_softcap import AsymmetricSoftcap

            self.softcap = AsymmetricSoftcap(cfg.logit_softcap)
        # g = sigmoid(gate) blends stream and skip: g x + (1 - g) w s, g = 0.5 at init
        # (docs/techniques.md#u-net-skips-and-skip-gates).
        self.skip_gates = nn.Parameter(torch.zeros(num_skips, dim)) if cfg.skip_gates else None
        self.virtual_layers = self.stack = None
        if stacked:
            add_layer_options(self, cfg, num_blocks)
        self.recurrence = None
        if cfg.recur_layers:
            from golf.models.recurrence import DepthRecurrence

            self.recurrence = DepthRecurrence(cfg)
        # Training switches recurrence per step; a model rebuilt from an artifact takes the state it was trained to.
        self.recur_active = True
        self._init_weights()
        if cfg.ortho_init:
            from golf.models.orthogonal_init import orthogonal_init_

            orthogonal_init_(self, cfg.ortho_proj_scale)

    def _init_weights(self) -> None:
        if self.tie_embeddings:
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=self.tied_embed_init_std)
        for module in self.modules():
            if isinstance(module, nn.Linear) and getattr(module, "zero_init", False):
                nn.init.zeros_(module.weight)

    def on_train_step(self, step: int, progress: float = 0.0) -> None:
        """Called by the trainer before each training step with the share of training done: whether depth
        recurrence runs (golf.models.recurrence). The flag is a plain attribute, so torch.compile guards on it and
        recompiles when it flips."""
        if self.recurrence is not None:
            self.recur_active = self.recurrence.active(step, progress)

    def step_state(self) -> dict:
        """State that training steps set and weights do not carry, stored in the artifact and restored on load:
        whether depth recurrence was on when training stopped, and the late-QAT grid of each layer (restored
        only where a protocol asks for it, e.g. TTT with ttt.qat)."""
        qat = {name: m.qat_bits for name, m in self.named_modules() if isinstance(m, CastedLinear) and m.qat_bits}
        return {"recur_active": self.recur_active, "qat_bits": qat}

    def load_step_state(self, state: dict) -> None:
        self.recur_active = state.get("recur_active", True)

    def layer_order(self) -> list[int]:
        """The physical block index of each virtual layer, in execution order (EBLS: its block-major order; depth
        recurrence: its loops while active)."""
        n = len(self.blocks)
        base = list(range(n)) if self.virtual_layers is None else self.virtual_layers.block_order(n)
        return base if self.recurrence is None else self.recurrence.order(base, self.recur_active)

    def gammas(self) -> dict[str, float]:
        """EBLS shrinkage gammas per virtual layer ({} without EBLS), for logging."""
        return {} if self.virtual_layers is None else self.virtual_layers.gammas()

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The embedding stream x0: rms_norm(tok_emb(ids)), or with the token mixers of golf.models.token_mixing."""
        x = self.tok_emb(input_ids)
        if self.mixed_embedding is not None:
            return self.mixed_embedding(self, x, input_ids)
        return F.rms_norm(x, (x.size(-1),))

    def merge_skip(self, i: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        s = self.skip_weights[i].to(dtype=x.dtype)[None, None, :] * skip
        if self.skip_gates is None:
            return x + s
        g = torch.sigmoid(self.skip_gates[i].to(dtype=x.dtype))[None, None, :]
        return g * x + (1 - g) * s

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        if self.stack is not None:  # the published stacks' options run their own loop (golf.models.layer_stack)
            return self.final_norm(self.stack(self, x, input_ids))
        x0, skips = x, []
        order = self.layer_order()
        num_encoder = len(order) // 2
        for depth, phys in enumerate(order):
            if depth >= num_encoder and skips and depth - num_encoder < len(self.skip_weights):
                x = self.merge_skip(depth - num_encoder, x, skips.pop())
            x = self.blocks[phys](x, x0)
            if depth < num_encoder:
                skips.append(x)
        return self.final_norm(x)

    def logits(self, input_ids: torch.Tensor, head_delta=None) -> torch.Tensor:
        """Soft-capped logits; `head_delta(hidden)` is added to the raw logits first (a LoRA on the head)."""
        x = self.hidden_states(input_ids)
        raw = F.linear(x, self.tok_emb.weight) if self.tie_embeddings else self.lm_head(x)
        if head_delta is not None:
            raw = raw + head_delta(x)
        if self.softcap is not None:
            return self.softcap(raw)
        return self.logit_softcap * torch.tanh(raw / self.logit_softcap)

    def forward(self, input_ids: torch.Tensor, target_ids: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy in fp32 over the soft-capped logits; reduction 'none' gives per-token NLL. In training
        with reduction 'mean', EBLS adds its shrinkage penalty (golf.models.ebls)."""
        logits = self.logits(input_ids)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), target_ids.reshape(-1),
                               reduction=reduction)
        if self.virtual_layers is not None and self.training and reduction == "mean":
            loss = loss + self.virtual_layers.penalty()
        return loss if reduction != "none" else loss.view_as(target_ids)
