"""What TTT trains and how one pass over a range of val positions updates the weights.

Shared by the legal stream loop (one chunk at a time, after it is scored) and the research-only
pre-quant path. A range of positions [a, b) trains on inputs val[a:b] and targets val[a+1:b+1]: exactly
the targets scored for those positions, no look-ahead token; the tokens come from the val stream's
`read`, so the ledger records exactly what each step read. The range is cut into sequences, grouped
into global batches of `batch_seqs` (global: ranks share a batch); each rank takes a contiguous share of
every batch and the gradients are summed over ranks, normalized by the batch's target count, so world
size 1 and N make the same updates.
"""

import math
import re

import torch
import torch.distributed as dist

from golf.data.loader import to_device
from golf.eval.context import autocast_context
from golf.eval.sliding import shard
from golf.eval.val_stream import ValStream
from golf.models.layer_groups import LayerGroup, layer_groups
from golf.models.layers import Rotary
from golf.models.roles import parameter_roles
from golf.optim.gradient_snr import GradientSNR, scale_gradients


def apply_lr_policy(groups: list[LayerGroup], policy: str, multipliers: list[float], frozen_blocks: int) -> None:
    """Set each group's lr_mult. `discriminative`: linear 0.3x at the first trained block to 1.0x at the
    last (ULMFiT; resouer #6), non-block weights 1.0x. `multipliers`: one value per block depth (e.g. from
    a quantization-sensitivity measurement); a shared block takes the mean over the depths it serves."""
    blocks = [g for g in groups if g.depths]
    n = max(d for g in blocks for d in g.depths) + 1 if blocks else 0
    for g in blocks:
        if policy == "discriminative":
            span = max(n - frozen_blocks - 1, 1)
            mults = [0.3 + 0.7 * max(d - frozen_blocks, 0) / span for d in g.depths]
        elif policy == "multipliers":
            mults = [multipliers[d] for d in g.depths]
        else:
            mults = [1.0]
        g.lr_mult = sum(mults) / len(mults)


def select_trainable(model: torch.nn.Module, cfg) -> list[LayerGroup]:
    """Set requires_grad by the freezing options; return the layer groups with their LR multipliers."""
    groups = layer_groups(model)
    pattern = re.compile(cfg.freeze_pattern) if cfg.freeze_pattern else None
    frozen_ids = {id(p) for g in groups if g.depths and min(g.depths) < cfg.freeze_blocks for p in g.params}
    roles = parameter_roles(model)
    for name, p in model.named_parameters():
        frozen = (id(p) in frozen_ids or (cfg.freeze_embeddings and roles[name].embedding)
                  or (pattern is not None and pattern.search(name) is not None))
        p.requires_grad_(not frozen)
    apply_lr_policy(groups, cfg.layer_lr, list(cfg.lr_multipliers), cfg.freeze_blocks)
    return groups


def build_optimizer(groups: list[LayerGroup], cfg) -> torch.optim.Optimizer:
    param_groups = [{"params": [p for p in g.params if p.requires_grad], "lr": cfg.lr * g.lr_mult,
                     "lr_mult": g.lr_mult, "key": g.key} for g in groups]
    param_groups = [g for g in param_groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    fused = param_groups[0]["params"][0].is_cuda  # one kernel per step, and no host reads of step counters
    return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay, fused=fused)


def cosine(progress: float, floor: float = 0.0) -> float:
    """floor + (1 - floor) 0.5 (1 + cos(pi x)): 1 at the start of the pass, `floor` at its end."""
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> float:
    for g in optimizer.param_groups:
        g["lr"] = base_lr * g["lr_mult"] * factor
    return base_lr * factor


def forget_inference_caches(model: torch.nn.Module) -> None:
    """Drop rotary tables built while scoring under inference mode: inference tensors cannot be saved
    for backward, nor enter a compiled training graph."""
    for m in model.modules():
        if isinstance(m, Rotary):
            m._cache_key = None


def _sequences(a: int, b: int, seq_len: int) -> list[tuple[int, int]]:
    return [(s, min(s + seq_len, b)) for s in range(a, b, seq_len)]


class RangeTrainer:
    """Applies `epochs` optimizer passes over a range of positions; keeps the per-layer SNR history."""

    def __init__(self, model, runner, groups: list[LayerGroup], optimizer, cfg, seq_len: int, where):
        """`where`: rank, world_size, device and autocast_dtype of this process (an EvalContext)."""
        self.model, self.runner, self.groups, self.optimizer = model, runner, groups, optimizer
        self.cfg, self.seq_len, self.rt = cfg, seq_len, where
        self.trainable = [p for g in groups for p in g.params if p.requires_grad]
        self.snr = GradientSNR(groups, cfg.snr_min, cfg.snr_max)  # on the device: read once per chunk, not per step

    def train_range(self, val: ValStream, a: int, b: int, epochs: int) -> float:
        """Train on positions [a, b); return the mean training loss of the last epoch."""
        forget_inference_caches(self.model)
        self.model.train()
        seqs = _sequences(a, b, self.seq_len)
        batches = [seqs[i : i + self.cfg.batch_seqs] for i in range(0, len(seqs), self.cfg.batch_seqs)]
        epoch_losses = [sum(self._step(val, batch) for batch in batches) for _ in range(epochs)]
        return float(epoch_losses[-1]) / max(b - a, 1)  # one host read per range, not per step

    def _step(self, val: ValStream, batch: list[tuple[int, int]]) -> torch.Tensor:
        n_targets = sum(e - s for s, e in batch)
        mine = shard(batch, self.rt.rank, self.rt.world_size)
        self.optimizer.zero_grad(set_to_none=False)
        for p in self.trainable:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.rt.device)
        for length in sorted({e - s for s, e in mine}, reverse=True):
            rows = [val.read(s, e + 1) for s, e in mine if e - s == length]
            chunk = to_device(torch.stack(rows), self.rt.device)
            with autocast_context(self.rt.device, self.rt.autocast_dtype):
                nll = self.runner(chunk[:, :-1], chunk[:, 1:], reduction="sum")
            (nll / n_targets).backward()
            loss_sum += nll.detach().double()
        if self.rt.world_size > 1:
            for p in self.trainable:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            dist.all_reduce(loss_sum, op=dist.ReduceOp.SUM)
        self._snr()
        if self.cfg.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.cfg.grad_clip_norm)
        self.optimizer.step()
        return loss_sum

    def _snr(self) -> None:
        """Per-layer SNR of this step's (all-reduced) gradient; scales it when ttt.snr_scale asks."""
        self.snr.measure()
        if self.cfg.snr_scale != "none":
            scale_gradients(self.groups, self.snr.scales(self.cfg.snr_scale))

    def snr_summary(self) -> dict:
        return {**self.snr.summary(), "applied": self.cfg.snr_scale != "none",
                "estimator": str(self.cfg.snr_scale) if self.cfg.snr_scale != "none" else None}
