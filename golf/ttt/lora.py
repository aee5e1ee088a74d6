"""Score-first per-document LoRA TTT (PR #77), base weights frozen.

The val stream is cut at BOS into documents; document d owns positions [bos_d, bos_{d+1}) (its last
position predicts the next document's BOS), so documents tile the stream. Inside a document, chunks of
`lora_chunk` positions are scored under inference mode with up to seq_len tokens of context from the
same document, then the adapters take `epochs` Adam steps on that chunk. Adapters and optimizer state
are reset at every document (`lora_reset=document`) or carried on (`stream`). Ranks take contiguous
shares of documents; documents are independent, so no gradient crosses ranks. The adapters' per-layer
gradient SNR is measured at every step, as in stream TTT, and logged once per document.
"""

import math
import re

import torch
from torch import nn
from torch.nn.utils import parametrize

from golf.data.loader import to_device
from golf.errors import ConfigError
from golf.eval.bpb import BPBAccumulator
from golf.eval.context import EvalContext, autocast_context
from golf.eval.sliding import Window, score_windows, shard
from golf.models.layer_groups import layer_groups
from golf.optim.gradient_snr import GradientSNR
from golf.ttt.training import forget_inference_caches


class LoRADelta(nn.Module):
    """weight -> weight + B A, with A Kaiming-uniform and B zero so a fresh adapter changes nothing."""

    def __init__(self, out_features: int, in_features: int, rank: int):
        super().__init__()
        self.a = nn.Parameter(torch.empty(rank, in_features))
        self.b = nn.Parameter(torch.empty(out_features, rank))
        self.reset()

    def reset(self) -> None:
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        nn.init.zeros_(self.b)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.b @ self.a).to(weight.dtype)


def documents(ctx: EvalContext) -> list[tuple[int, int]]:
    """Position ranges [start, end) of the documents, tiling [0, n)."""
    n = ctx.n_predictions
    starts = ctx.val.bos_positions(n, ctx.bos_id)
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [(s, e) for s, e in zip(starts, [*starts[1:], n]) if e > s]


def attach_adapters(model: nn.Module, targets: str, rank: int) -> list[LoRADelta]:
    pattern = re.compile(targets)
    adapters = []
    for name, module in model.named_modules():
        if pattern.search(name) and isinstance(getattr(module, "weight", None), nn.Parameter):
            out_f, in_f = module.weight.shape
            adapter = LoRADelta(out_f, in_f, rank).to(module.weight.device)
            parametrize.register_parametrization(module, "weight", adapter)
            adapters.append(adapter)
    return adapters


def detach_adapters(model: nn.Module) -> None:
    for module in list(model.modules()):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


def run_lora_ttt(model, ctx: EvalContext, cfg, seed: int, on_chunk=None) -> dict:
    """Score-first per-document LoRA TTT (`cfg`: the ttt config section); `ctx` carries the ledger."""
    all_docs = documents(ctx)
    first_doc = len(all_docs) * ctx.rank // ctx.world_size
    docs = shard(all_docs, ctx.rank, ctx.world_size)
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = attach_adapters(model, cfg.lora_targets, cfg.lora_rank)
    if not adapters:
        raise ConfigError(f"ttt.lora_targets={cfg.lora_targets!r} matched no module with a weight; use a regex on "
                          f"module names such as 'attn\\.(c_q|c_v)$'")
    params = [p for a in adapters for p in a.parameters()]
    snr = GradientSNR(layer_groups(model), cfg.snr_min, cfg.snr_max)  # adapters sit in their layer's group

    def make_opt():
        return torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-10)

    optimizer = make_opt()
    acc = BPBAccumulator(ctx.device)
    try:
        for d, (start, end) in enumerate(docs, start=first_doc):
            if cfg.lora_reset == "document" or d == first_doc:
                torch.manual_seed(seed + d)  # a document's adapters do not depend on which rank runs it
                for a in adapters:
                    a.reset()
                optimizer = make_opt()
            for cs in range(start, end, cfg.lora_chunk):
                ce = min(cs + cfg.lora_chunk, end)
                ws = max(start, ce - ctx.seq_len)
                window = Window(ws, ce - ws, cs - ws)
                score_windows(model, [window], ctx, acc)
                ctx.ledger.tick()
                if ce < end or cfg.lora_reset == "stream":
                    _adapt(model, optimizer, ctx, window, cfg.epochs, snr)
                ctx.ledger.tick()
            if on_chunk is not None:
                on_chunk(d, {"ttt/step": d, "ttt/doc_tokens": end - start, **snr.metrics("ttt/snr")})
    finally:
        detach_adapters(model)
        for p in model.parameters():
            p.requires_grad_(True)
    acc.all_reduce()
    return {**acc.result(), "documents": len(docs), "snr": {**snr.summary(), "applied": False, "estimator": None}}


def _adapt(model, optimizer, ctx: EvalContext, window: Window, epochs: int, snr: GradientSNR) -> None:
    """Adam steps on the mean loss of the window's scored positions (their context is not a target)."""
    forget_inference_caches(model)
    model.train()
    chunk = to_device(ctx.val.read(window.start, window.start + window.length + 1), ctx.device)[None]
    for _ in range(epochs):
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(ctx.device, ctx.autocast_dtype):
            nll = model(chunk[:, :-1], chunk[:, 1:], reduction="none")
        nll[:, window.score_from :].mean().backward()
        snr.measure()
        optimizer.step()
