"""Non-overlapping evaluation (the official `eval_val`): the val stream cut into sequences of
length T, each token scored once with context 0..T-1; ranks take contiguous slices of sequences."""

import contextlib

import torch

from golf.data.loader import to_device
from golf.eval.bpb import BPBAccumulator, ByteTables


def evaluate_full(model, val_tokens: torch.Tensor, tables: ByteTables, seq_len: int, batch_seqs: int,
                  rank: int, world_size: int, device: torch.device, autocast_dtype: torch.dtype | None,
                  max_seqs: int = 0) -> dict:
    """Return {val_loss (nats/token), val_bpb, tokens, bytes} over the (optionally capped) val split."""
    total_seqs = (val_tokens.numel() - 1) // seq_len
    if max_seqs > 0:
        total_seqs = min(total_seqs, max_seqs)
    seq_start = total_seqs * rank // world_size
    seq_end = total_seqs * (rank + 1) // world_size
    acc = BPBAccumulator(device)
    autocast = (torch.autocast(device_type=device.type, dtype=autocast_dtype)
                if autocast_dtype is not None else contextlib.nullcontext())
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for first in range(seq_start, seq_end, batch_seqs):
            last = min(first + batch_seqs, seq_end)
            chunk = to_device(val_tokens[first * seq_len : last * seq_len + 1].to(torch.int64), device)
            x = chunk[:-1].reshape(-1, seq_len)
            y = chunk[1:].reshape(-1, seq_len)
            with autocast:
                nll = model(x, y, reduction="none")
            acc.add(nll, x, y, tables)
    acc.all_reduce()
    model.train(was_training)
    return acc.result()
