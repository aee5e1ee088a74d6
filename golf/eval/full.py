"""Non-overlapping evaluation (the official `eval_val`): the val stream cut into sequences of
length T, each token scored once with context 0..T-1; ranks take contiguous slices of sequences."""

import torch

from golf.data.loader import to_device
from golf.eval.bpb import BPBAccumulator
from golf.eval.context import EvalContext, autocast_context
from golf.logging.progress import Progress


def evaluate_full(model, ctx: EvalContext) -> dict:
    """Return {val_loss (nats/token), val_bpb, tokens, bytes} over the (optionally capped) val split."""
    seq_len = ctx.seq_len
    total_seqs = ctx.n_predictions // seq_len
    seq_start = total_seqs * ctx.rank // ctx.world_size
    seq_end = total_seqs * (ctx.rank + 1) // ctx.world_size
    acc = BPBAccumulator(ctx.device)
    was_training = model.training
    model.eval()
    batches = range(seq_start, seq_end, ctx.batch_seqs)
    with torch.inference_mode(), Progress(len(batches), "eval", "batches", ctx.rank) as progress:
        for first in batches:
            last = min(first + ctx.batch_seqs, seq_end)
            chunk = to_device(ctx.val.window(first * seq_len, last * seq_len + 1), ctx.device)
            x = chunk[:-1].reshape(-1, seq_len)
            y = chunk[1:].reshape(-1, seq_len)
            nbytes = (to_device(ctx.val.target_bytes(first * seq_len, last * seq_len), ctx.device).view_as(y)
                      if ctx.val.has_byte_sidecar else None)
            with autocast_context(ctx.device, ctx.autocast_dtype):
                nll = model(x, y, reduction="none")
            acc.add(nll, x, y, ctx.tables, target_bytes=nbytes)
            if ctx.ledger is not None:
                ctx.ledger.record("score", first * seq_len, last * seq_len)
            progress.update()
    acc.all_reduce()
    model.train(was_training)
    return acc.result()
