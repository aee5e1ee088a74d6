"""The token n-gram tilt (PR #2135's token expert, PR #1514 before it): a boost for the continuation that the
earlier occurrences of the same context predict, with the softmax taken again over the whole vocabulary.

The tilt walks the val positions in the protocol's evaluation order: the stream for the plain evals and stream
TTT, the documents in queue order for the document protocols (golf.ttt.documents), so that a score never depends
on a document the queue puts after it. At step i of that order the context is the last order - 1 input tokens,
hashed (two polynomial hashes modulo primes below 2^31, 62 bits together); the state read at step i holds the
(context, target) pairs of the steps before i only: lookup, then update, as in the records' left-to-right pass.
When the context's most frequent continuation h (on a tie, the token that reached the count first) took at
least `threshold` of its earlier occurrences, position i is scored with

    p'(a) = p(a) exp(boost [a = h]) / (1 + p(h) (exp(boost) - 1)),

the model's logits with +boost on h through a softmax over the whole vocabulary, so it sums to 1. Nothing reads
the token being predicted: PR #2018's within-word and word-start experts, whose gates ask whether the target
starts a word, are refused by the config check (golf.ttt.checks), and so is a boost without the new softmax.

A hint depends only on the tokens before its position, so every position's hint is computed once before scoring,
on every rank and inside the eval timer, as the records do (their NGRAM_HINT_PRECOMPUTE_OUTSIDE=0). It is part of
the predictor, like the model's attention over its window: the perturbation probe proves it causal
(tests/test_ngram_tilt.py), while the legality ledger records adaptations. The pass is vectorized (sorts and
cumulative maxima on the eval device) instead of the records' C hash table.
"""

import dataclasses
import time

import torch
import torch.nn.functional as F

from golf.eval.context import EvalContext

# (prime, base) of the two context hashes; h * base + token stays below 2^62, so int64 never overflows
HASHES = ((2_147_483_629, 1_000_003), (2_147_483_587, 999_983))


def context_keys(inputs: torch.Tensor, width: int) -> torch.Tensor:
    """A 62-bit hash of inputs[i - width + 1 .. i] for every i >= width - 1 (len(inputs) - width + 1 keys)."""
    n = inputs.numel() - width + 1
    keys = torch.zeros(n, dtype=torch.int64, device=inputs.device)
    for prime, base in HASHES:
        h = torch.zeros(n, dtype=torch.int64, device=inputs.device)
        for j in range(width):
            h = (h * base + inputs[j : j + n] + 1) % prime
        keys = keys * (1 << 31) + h
    return keys


def _first_of_run(sorted_values: torch.Tensor) -> torch.Tensor:
    first = torch.ones_like(sorted_values, dtype=torch.bool)
    first[1:] = sorted_values[1:] != sorted_values[:-1]
    return first


def _run_start(first: torch.Tensor) -> torch.Tensor:
    """For every element of runs marked by `first`, the index where its run starts."""
    index = torch.arange(first.numel(), device=first.device)
    return torch.cummax(torch.where(first, index, 0), 0).values


def continuation_hints(inputs: torch.Tensor, targets: torch.Tensor, width: int,
                       threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(hint, gate) for every step i of a sequence whose step i has input inputs[i] and predicts targets[i]: the
    top continuation of step i's context over the earlier steps with that context, and whether it took at least
    `threshold` of them. Steps whose context would reach before the sequence get no hint."""
    hint = torch.zeros_like(inputs)
    gate = torch.zeros_like(inputs, dtype=torch.bool)
    if inputs.numel() < width:
        return hint, gate
    keys, order = torch.sort(context_keys(inputs, width), stable=True)  # occurrences of a context, in step order
    token = targets[width - 1 :][order]
    first = _first_of_run(keys)
    group = torch.cumsum(first, 0) - 1
    index = torch.arange(keys.numel(), device=keys.device)
    seen = index - _run_start(first)  # earlier occurrences of the context
    # running count of each (context, continuation) pair, this occurrence included; the stable sort keeps step order
    pairs, by_pair = torch.sort(group * (int(token.max()) + 1) + token, stable=True)
    count = torch.empty_like(index)
    count[by_pair] = index - _run_start(_first_of_run(pairs)) + 1
    # the top count after each occurrence: a running maximum inside the context (an offset keeps contexts apart)
    offset = group * (keys.numel() + 1)
    top_after = torch.cummax(count + offset, 0).values - offset
    top_before = torch.where(first, 0, top_after.roll(1))
    # the top token: the continuation of the last occurrence that raised the top count (always the first one)
    leader = torch.cummax(torch.where(count > top_before, index, 0), 0).values
    top_token_before = token[leader].roll(1)
    open_ = (seen > 0) & (top_before.double() >= threshold * seen.double())
    steps = order + width - 1
    gate[steps] = open_
    hint[steps] = torch.where(open_, top_token_before, 0)
    return hint, gate


@dataclasses.dataclass(frozen=True)
class NgramTilt:
    """Every position's hint and gate; applied to the logits a scorer computes."""

    hint: torch.Tensor  # int64 [n_predictions]
    gate: torch.Tensor  # bool [n_predictions]
    boost: float
    summary: dict

    def logits(self, logits: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """fp32 `logits` [rows, width, vocab] of windows starting at positions `starts` [rows], +boost on each open
        position's hint; columns past the stream (padding, never scored) take the last position's."""
        positions = (starts.to(logits.device)[:, None] + torch.arange(logits.size(1), device=logits.device))
        positions = positions.clamp(max=self.hint.numel() - 1)
        boost = torch.where(self.gate[positions], self.boost, 0.0).to(torch.float32)
        return logits.float().scatter_add(-1, self.hint[positions].unsqueeze(-1), boost.unsqueeze(-1))

    def nll(self, logits: torch.Tensor, targets: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Per-token NLL [rows, width] under the tilted softmax."""
        tilted = self.logits(logits, starts)
        return F.cross_entropy(tilted.reshape(-1, tilted.size(-1)), targets.reshape(-1),
                               reduction="none").view_as(targets)


def tilted_sliding(score, model, ctx: EvalContext, cfg, stride: int) -> dict:
    """`score(model, ctx, stride)` (a sliding eval) with the tilt of `cfg`, and the tilt's summary."""
    ctx = with_tilt(ctx, cfg)
    return {**score(model, ctx, stride), "ngram_tilt": ctx.tilt.summary}


def protocol_tilt(ctx: EvalContext, cfg, ttt) -> EvalContext:
    """`ctx` with the tilt walked in the order the TTT protocol `ttt` scores: the stream, or its document queue."""
    if ttt.mode == "stream":
        return with_tilt(ctx, cfg)
    from golf.ttt.documents import queue_order  # the document protocols' queue

    return with_tilt(ctx, cfg, queue_order(ctx, ttt))


def with_tilt(ctx: EvalContext, cfg, documents: list[tuple[int, int]] | None = None) -> EvalContext:
    """`ctx` with the tilt of `cfg` (the eval.ngram_tilt section) for every position, walked in the stream's
    order or, given `documents` (position ranges in the queue's order), document after document."""
    t0 = time.perf_counter()
    n = ctx.n_predictions
    tokens = ctx.val.window(0, n + 1).to(ctx.device)
    if documents is None:
        positions = torch.arange(n, device=ctx.device)
    else:
        positions = torch.cat([torch.arange(s, e, device=ctx.device) for s, e in documents])
    hint_in_order, gate_in_order = continuation_hints(tokens[positions], tokens[positions + 1], cfg.order - 1,
                                                      cfg.threshold)
    hint = torch.zeros(n, dtype=torch.int64, device=ctx.device)
    gate = torch.zeros(n, dtype=torch.bool, device=ctx.device)
    hint[positions], gate[positions] = hint_in_order, gate_in_order
    summary = {"order": cfg.order, "boost": cfg.boost, "threshold": cfg.threshold,
               "walk": "stream" if documents is None else "queue", "positions": n, "gated": int(gate.sum()),
               "precompute_s": time.perf_counter() - t0}
    return dataclasses.replace(ctx, tilt=NgramTilt(hint, gate, cfg.boost, summary))
