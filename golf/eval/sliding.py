"""Sliding-window evaluation, exact ("v2" in docs/rules.md#sliding-windows): every target is scored exactly once.

Windows of length L start every S (the stride) positions. Window 0 scores all of its positions; every
later window scores only its last S positions (fewer for the final window), so each of those targets
sees at least L - S tokens of context. The scored ranges tile [0, N) without overlap; the early
published version let truncated tail windows re-score the same trailing targets, which this does not.
With S = L the windows are the non-overlapping sequences of the official eval.
"""

from dataclasses import dataclass

import torch

from golf.data.loader import to_device
from golf.eval.bpb import BPBAccumulator
from golf.eval.context import EvalContext, autocast_context
from golf.logging.progress import Progress


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


def score_windows(model, windows: list[Window], ctx: EvalContext, acc: BPBAccumulator, progress=None) -> None:
    """Add the scored positions of `windows` to `acc` under inference mode (weights cannot change), and enter
    the positions the sums actually took (read back from the mask) in the context's ledger.

    Short windows are right-padded to seq_len so every batch has one shape; attention is causal, so
    padding never reaches a scored position. `progress` (golf.logging.progress.Progress) counts windows.
    """
    seq_len = ctx.seq_len
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for first in range(0, len(windows), ctx.batch_seqs):
            batch = windows[first : first + ctx.batch_seqs]
            # One masked reduction per batch, not one per window: a handful of kernels and no host sync on the GPU,
            # over the columns some window of the batch scores (the last `stride` ones after the first batch).
            lo, hi = min(w.score_from for w in batch), max(w.length for w in batch)
            x = torch.zeros(len(batch), seq_len, dtype=torch.int64)
            y = torch.zeros(len(batch), seq_len, dtype=torch.int64)
            scored = torch.zeros(len(batch), seq_len, dtype=torch.bool)
            nbytes = torch.zeros(len(batch), seq_len, dtype=torch.int32) if ctx.val.has_byte_sidecar else None
            for row, w in enumerate(batch):
                chunk = ctx.val.window(w.start, w.start + w.length + 1)
                x[row, : w.length] = chunk[:-1]
                y[row, : w.length] = chunk[1:]
                scored[row, w.score_from : w.length] = True
                if nbytes is not None:
                    nbytes[row, : w.length] = ctx.val.target_bytes(w.start, w.start + w.length)
            if ctx.ledger is not None:
                _record_scored(ctx.ledger, batch, scored)
            x, y, mask = to_device(x, ctx.device), to_device(y, ctx.device), to_device(scored, ctx.device)
            if nbytes is not None:
                nbytes = to_device(nbytes, ctx.device)[:, lo:hi]
            with autocast_context(ctx.device, ctx.autocast_dtype):
                if ctx.tilt is None:
                    nll = model(x, y, reduction="none")
                else:
                    nll = ctx.tilt.nll(model.logits(x), y, torch.tensor([w.start for w in batch]))
            acc.add(nll[:, lo:hi], x[:, lo:hi], y[:, lo:hi], ctx.tables, mask[:, lo:hi], nbytes)
            if progress is not None:
                progress.update(len(batch))
    model.train(was_training)


def _record_scored(ledger, batch: list[Window], scored: torch.Tensor) -> None:
    """Ledger `score` ranges from the summation mask: row r sums positions start + its set columns, which are
    one contiguous run (the first set column and the count say where). The mask is built on the host before
    it is copied to the device, so reading it here never waits for the device."""
    rows = scored.numpy()
    for w, f, c in zip(batch, rows.argmax(axis=1).tolist(), rows.sum(axis=1).tolist()):
        if c:
            ledger.record("score", w.start + f, w.start + f + c)


def evaluate_sliding(model, ctx: EvalContext, stride: int) -> dict:
    """Return {val_loss, val_bpb, tokens, bytes}; ranks score contiguous, disjoint sets of windows."""
    windows = shard(sliding_windows(ctx.n_predictions, ctx.seq_len, stride), ctx.rank, ctx.world_size)
    acc = BPBAccumulator(ctx.device)
    with Progress(len(windows), f"sliding eval (stride {stride})", "windows", ctx.rank) as progress:
        score_windows(model, windows, ctx, acc, progress)
    acc.all_reduce()
    return acc.result()


def sliding_protocol(pipeline, stride: int) -> dict:
    """The sliding-window protocol as a pipeline scores it (golf.pipeline): on a fresh reload of the artifact,
    through the pipeline's `score_sliding`, with the n-gram tilt when configured (its precompute counts in the
    protocol's seconds); logs its final lines."""
    cfg = pipeline.cfg

    def protocol(model) -> dict:
        if cfg.eval.ngram_tilt.enabled:
            from golf.eval.ngram_tilt import tilted_sliding

            return tilted_sliding(pipeline.score_sliding, model, pipeline.ctx, cfg.eval.ngram_tilt, stride)
        return pipeline.score_sliding(model, pipeline.ctx, stride)

    result, _ = pipeline.timed(protocol)
    pipeline.final_line(f"final_{cfg.quant.name}_sliding_window", result)
    return result
