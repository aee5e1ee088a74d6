"""What the options add to the embedding stream x0 (docs/techniques.md#bigramhash, #smeargate): BigramHash added
to the token embedding, the content-gated SmearGate on the raw embedding, and the static SmearGate after the
embedding's RMSNorm (or before it, arch.smear_pre_norm, as in PR #484's EBLS).

GPT imports this module only when one of them is configured, so the baseline's embedding stays
rms_norm(tok_emb(ids)) and a baseline record carries none of this. `add_token_mixers` builds them in the
order the model always has (BigramHash, SmearGate, gated SmearGate), so every preset draws the same
initial weights; `mixed_embedding` applies them in the order the records do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # a record's script builds the model from a plain namespace
    from golf.config.arch import ArchConfig
    from golf.models.gpt import GPT


def add_token_mixers(model: GPT, cfg: ArchConfig) -> None:
    """Build the configured mixers on `model` (model.bigram, model.smear, model.gated_smear) and route its
    embedding through them."""
    bos_id = cfg.bos_id if cfg.bos_mask else None
    if cfg.bigram_buckets:
        from golf.models.bigram_hash import BigramHash

        model.bigram = BigramHash(cfg.bigram_buckets, cfg.bigram_dim, cfg.model_dim, cfg.bigram_hash,
                                  cfg.bigram_init_std, cfg.bigram_scale_init, bos_id, cfg.bigram_mult)
    if cfg.smear:
        from golf.models.smear_gate import SmearGate

        model.smear = SmearGate(cfg.model_dim, bos_id, cfg.smear_init_logit)
    model.smear_pre_norm = cfg.smear_pre_norm
    if cfg.gated_smear:  # masked at every BOS whatever arch.bos_mask says (the PR #1855 fix)
        from golf.models.gated_smear import GatedSmear

        model.gated_smear = GatedSmear(cfg.gate_window, cfg.bos_id)
    model.mixed_embedding = mixed_embedding


def mixed_embedding(model: GPT, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """x0 from the token embedding `x`: + BigramHash, gated SmearGate, RMSNorm with SmearGate on one side of it."""
    if model.bigram is not None:
        x = x + model.bigram(ids)
    if model.gated_smear is not None:
        x = model.gated_smear(x, ids)
    if model.smear is not None and model.smear_pre_norm:
        return F.rms_norm(model.smear(x, ids), (x.size(-1),))
    x = F.rms_norm(x, (x.size(-1),))
    return model.smear(x, ids) if model.smear is not None else x
