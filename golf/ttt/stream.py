"""Legal score-first stream TTT (PR #461 recipe, merged in PR #549), one left-to-right pass.

The eval windows (sliding or non-overlapping, per eval.stride) are assigned to the chunk holding their
first scored position. For each chunk: SCORE its windows under inference mode (ranks split them), then,
except for the last chunk, TRAIN for E epochs on exactly the positions just scored, with the LR on a
cosine across the whole pass: chunk c of C trains at lr x cos(c / (C - 1)), as PR #549, so the last
trained chunk (C - 2) still gets a small step. Every phase is entered in the ledger, which proves the order afterwards.
"""

import time

import torch

from golf.eval.bpb import BPBAccumulator, ByteTables
from golf.eval.sliding import n_predictions, score_windows, shard, sliding_windows
from golf.ttt.ledger import Ledger
from golf.ttt.training import (
    RangeTrainer,
    build_optimizer,
    cosine,
    select_trainable,
    set_lr,
)
from golf.utils.compile import compile_model


def chunk_windows(windows: list, chunk_tokens: int) -> list[list]:
    """Windows grouped by the chunk of their first scored position, in stream order."""
    chunks: dict[int, list] = {}
    for w in windows:
        chunks.setdefault(w.scored[0] // chunk_tokens, []).append(w)
    return [chunks[c] for c in sorted(chunks)]


def run_stream_ttt(model, val_tokens: torch.Tensor, tables: ByteTables, seq_len: int, stride: int,
                   score_batch_seqs: int, cfg, rt, max_seqs: int = 0, on_chunk=None) -> dict:
    """Score-first TTT over the val stream; returns the loop's BPB, the ledger and the SNR summary.

    `on_chunk(index, metrics)` is called on every rank after each chunk (for logging).
    """
    n = n_predictions(val_tokens, seq_len, max_seqs)
    chunks = chunk_windows(sliding_windows(n, seq_len, stride), cfg.chunk_tokens)
    groups = select_trainable(model, cfg)
    optimizer = build_optimizer(groups, cfg)
    runner = compile_model(model) if cfg.compile else model
    trainer = RangeTrainer(model, runner, groups, optimizer, cfg, cfg.seq_len or seq_len, rt)
    ledger = Ledger(n, rt.rank)
    acc = BPBAccumulator(rt.device)
    t0 = time.perf_counter()
    for index, windows in enumerate(chunks):
        score_windows(model, shard(windows, rt.rank, rt.world_size), val_tokens, tables, seq_len, score_batch_seqs,
                      acc, rt.device, rt.autocast_dtype, ledger)
        ledger.tick()
        metrics = {"ttt/chunk": index, "ttt/scored_tokens": windows[-1].scored[1]}
        if index < len(chunks) - 1:
            a, b = windows[0].scored[0], windows[-1].scored[1]
            metrics["ttt/lr"] = set_lr(optimizer, cfg.lr, cosine(index / max(len(chunks) - 1, 1), cfg.lr_floor))
            metrics["ttt/train_loss"] = trainer.train_range(val_tokens, a, b, cfg.epochs)
            ledger.record("update", a, b)
            ledger.record("stat", a, b)
            metrics.update({f"snr/{k}": v for k, v in trainer.snr_values().items()})
        ledger.tick()
        if on_chunk is not None:
            metrics["ttt/elapsed_s"] = time.perf_counter() - t0
            on_chunk(index, metrics)
    for p in model.parameters():
        p.requires_grad_(True)
    acc.all_reduce()
    return {**acc.result(), "chunks": len(chunks), "ledger": ledger, "snr": trainer.snr_summary()}
