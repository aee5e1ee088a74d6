"""Settings derived from the config (not rules): gradient accumulation, the eval window and batch."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a record's script reads a plain namespace
    from golf.config.schema import GolfConfig


def grad_accum_steps(cfg: GolfConfig, world_size: int) -> int:
    """The baseline keeps 8 micro-batches per step in total: 8 // world_size on each rank."""
    if cfg.train.grad_accum_steps > 0:
        return cfg.train.grad_accum_steps
    return max(8 // world_size, 1)


def eval_batch_seqs(cfg: GolfConfig, world_size: int) -> int:
    """Windows per forward pass on each rank: the official eval's `val_batch_size // (world_size * grad_accum)`
    tokens, in windows of the eval length (at least one)."""
    tokens = cfg.eval.batch_tokens // (world_size * grad_accum_steps(cfg, world_size))
    return max(tokens // eval_seq_len(cfg), 1)


def eval_seq_len(cfg: GolfConfig) -> int:
    return cfg.eval.seq_len or cfg.train.seq_len
