"""Sliding-window evaluation, exact ("v2" in docs/rules.md#sliding-windows): every target is scored exactly once.

Windows of length L start every S (the stride) positions. Window 0 scores all of its positions; every
later window scores only its last S positions (fewer for the final window), so each of those targets
sees at least L - S tokens of context. The scored ranges tile [0, N) without overlap; the early
published version let truncated tail windows re-score the same trailing targets, which this does not.
With S = L the windows are the non-overlapping sequences of the official eval.
"""

import contextlib
from dataclasses import dataclass

import torch

from golf.data.loader import to_device
from golf.eval.bpb import BPBAccumulator, ByteTables


@dataclass(frozen=True)
class Window:
    start: int  # first input position
    length: int  # inputs val[start : start + length]
    score_from: int  # offset of the first scored position inside the window

    @property
    def scored(self) -> tuple[int, int]:
        return self.start + self.score_from, self.start + self.length


def sliding_windows(n_predictions: int, seq_len: int, stride: int) -> list[Window]:
    """The windows covering predictions [0, n_predictions), in order."""
    context = seq_len - stride
    windows = []
    start = 0
    while start == 0 or start + context < n_predictions:
        length = min(start + seq_len, n_predictions) - start
        windows.append(Window(start, length, 0 if start == 0 else context))
        start += stride
    return windows


def shard(items: list, rank: int, world_size: int) -> list:
    """The contiguous share of `items` owned by `rank`; shares never overlap and cover everything."""
    n = len(items)
    return items[n * rank // world_size : n * (rank + 1) // world_size]


def n_predictions(val_tokens: torch.Tensor, seq_len: int, max_seqs: int) -> int:
    """Predictions to score: the whole stream, or the first max_seqs x seq_len for a capped smoke eval."""
    n = val_tokens.numel() - 1
    return min(n, max_seqs * seq_len) if max_seqs > 0 else n


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def score_windows(model, windows: list[Window], val_tokens: torch.Tensor, tables: ByteTables, seq_len: int,
                  batch_seqs: int, acc: BPBAccumulator, device: torch.device, autocast_dtype: torch.dtype | None,
                  ledger=None) -> None:
    """Add the scored positions of `windows` to `acc` under inference mode (weights cannot change).

    Short windows are right-padded to seq_len so every batch has one shape; attention is causal, so
    padding never reaches a scored position.
    """
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for first in range(0, len(windows), batch_seqs):
            batch = windows[first : first + batch_seqs]
            x = torch.zeros(len(batch), seq_len, dtype=torch.int64)
            y = torch.zeros(len(batch), seq_len, dtype=torch.int64)
            scored = torch.zeros(len(batch), seq_len, dtype=torch.bool)
            for row, w in enumerate(batch):
                chunk = val_tokens[w.start : w.start + w.length + 1].to(torch.int64)
                x[row, : w.length] = chunk[:-1]
                y[row, : w.length] = chunk[1:]
                scored[row, w.score_from : w.length] = True
            x, y, scored = to_device(x, device), to_device(y, device), to_device(scored, device)
            with autocast_context(device, autocast_dtype):
                nll = model(x, y, reduction="none")
            # One masked reduction per batch, not one per window: a handful of kernels and no host sync on the GPU,
            # over the columns some window of the batch scores (the last `stride` ones after the first batch).
            lo, hi = min(w.score_from for w in batch), max(w.length for w in batch)
            acc.add(nll[:, lo:hi], x[:, lo:hi], y[:, lo:hi], tables, scored[:, lo:hi])
            if ledger is not None:
                for w in batch:
                    ledger.record("score", *w.scored)
    model.train(was_training)


def evaluate_sliding(model, val_tokens: torch.Tensor, tables: ByteTables, seq_len: int, stride: int,
                     batch_seqs: int, rank: int, world_size: int, device: torch.device,
                     autocast_dtype: torch.dtype | None, max_seqs: int = 0, ledger=None) -> dict:
    """Return {val_loss, val_bpb, tokens, bytes}; ranks score contiguous, disjoint sets of windows."""
    windows = sliding_windows(n_predictions(val_tokens, seq_len, max_seqs), seq_len, stride)
    acc = BPBAccumulator(device)
    score_windows(model, shard(windows, rank, world_size), val_tokens, tables, seq_len, batch_seqs, acc, device,
                  autocast_dtype, ledger)
    acc.all_reduce()
    return acc.result()
