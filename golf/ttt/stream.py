"""Legal score-first stream TTT (PR #461 recipe, merged in PR #549), one left-to-right pass.

The eval windows (sliding or non-overlapping, per eval.stride) are assigned to the chunk holding their
first scored position. For each chunk: SCORE its windows under inference mode (ranks split them), then,
except for the last chunk, TRAIN for E epochs on exactly the positions just scored, with the LR on a
cosine across the whole pass: chunk c of C trains at lr x cos(c / (C - 1)), as PR #549, so the last
trained chunk (C - 2) still gets a small step. The ledger's clock moves at each phase; what was scored and
what was read for training is entered by the scorer and the val stream themselves, which proves the order
afterwards.
"""

import time

from golf.eval.bpb import BPBAccumulator
from golf.eval.context import EvalContext
from golf.eval.sliding import score_windows, shard, sliding_windows
from golf.logging.progress import Progress
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


def run_stream_ttt(model, ctx: EvalContext, cfg, stride: int, on_chunk=None) -> dict:
    """Score-first TTT over the val stream (`cfg`: the ttt config section); returns the loop's BPB and the SNR
    summary. `ctx` carries the ledger. `on_chunk(index, metrics)` is called on every rank after each chunk."""
    chunks = chunk_windows(sliding_windows(ctx.n_predictions, ctx.seq_len, stride), cfg.chunk_tokens)
    groups = select_trainable(model, cfg)
    optimizer = build_optimizer(groups, cfg)
    runner = compile_model(model) if cfg.compile else model
    trainer = RangeTrainer(model, runner, groups, optimizer, cfg, cfg.seq_len or ctx.seq_len, ctx)
    acc = BPBAccumulator(ctx.device)
    t0 = time.perf_counter()
    progress = Progress(len(chunks), f"ttt {cfg.name}", "chunks", ctx.rank)
    for index, windows in enumerate(chunks):
        score_windows(model, shard(windows, ctx.rank, ctx.world_size), ctx, acc)
        ctx.ledger.tick()
        metrics = {"ttt/step": index, "ttt/scored_tokens": windows[-1].scored[1]}
        if index < len(chunks) - 1:
            a, b = windows[0].scored[0], windows[-1].scored[1]
            metrics["ttt/lr"] = set_lr(optimizer, cfg.lr, cosine(index / max(len(chunks) - 1, 1), cfg.lr_floor))
            metrics["ttt/train_loss"] = trainer.train_range(ctx.val, a, b, cfg.epochs)
            metrics.update(trainer.snr.metrics("ttt/snr"))
        ctx.ledger.tick()
        if on_chunk is not None:
            metrics["ttt/elapsed_s"] = time.perf_counter() - t0
            on_chunk(index, metrics)
        progress.update()
    progress.close()
    for p in model.parameters():
        p.requires_grad_(True)
    acc.all_reduce()
    return {**acc.result(), "chunks": len(chunks), "snr": trainer.snr_summary()}
