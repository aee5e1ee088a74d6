"""Coprime-stride multi-shard training loader (`train.loader=coprime`; the 03-29 record, idea from PR #726).

Every shard is memory-mapped and cut into blocks of `seq_len` tokens after a random phase. A
cursor per shard visits its blocks in the order `(start + i * stride) mod count` with
`gcd(stride, count) = 1`: a full permutation of the shard's blocks before any block repeats; an
exhausted cursor is re-drawn (new phase, start and stride). Every call builds one global batch:
a few shards at first and more as training goes on, picked with weights growing with their
remaining blocks, each giving one window plus a multinomial share of the rest; the windows are
shuffled within a shard and interleaved across shards by random round-robin. Every rank draws
the same global batch from the same RNG (seeded by the shard names and the run seed) and keeps
windows `rank, rank + W, ...`, so ranks never overlap and never communicate. A window is
`seq_len + 1` tokens: the inputs and, shifted by one, the targets.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from golf.data.loader import local_batch_tokens, to_device
from golf.data.shards import find_shards, load_shard
from golf.errors import DataError

# The record's mixing schedule: over the first MIX_HORIZON global batches the number of shards in
# a batch grows from `lo` to `hi` and the weight exponent falls from 0.9 to 0.5.
MIX_HORIZON = 1800
FEW_SHARDS, MANY_SHARDS = 8, 32


def _seed(names: list[str], seed: int) -> int:
    """FNV-1a (64-bit) of the shard names, then the run seed: the same on every rank and machine."""
    h = 0xCBF29CE484222325
    for byte in "\n".join(names).encode() + b"\0" + str(seed).encode():
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class ShardCursor:
    """One pass over a shard's blocks in coprime-stride order."""

    def __init__(self, n_tokens: int, seq_len: int, rng: np.random.Generator):
        self.seq_len = seq_len
        self.phase = int(rng.integers(0, min(seq_len - 1, n_tokens - seq_len - 1) + 1))
        self.count = (n_tokens - 1 - self.phase) // seq_len
        self.start = int(rng.integers(0, self.count))
        self.stride = 1
        while self.count > 2:
            self.stride = int(rng.integers(1, self.count))
            if math.gcd(self.stride, self.count) == 1:
                break
        self.taken = 0

    @property
    def remaining(self) -> int:
        return self.count - self.taken

    def next_offset(self) -> int:
        """Token offset of the next window of this pass."""
        block = (self.start + self.taken * self.stride) % self.count
        self.taken += 1
        return self.phase + block * self.seq_len


class CoprimeLoader:
    """Drop-in for DistributedTokenLoader: next_batch (its resume state: golf.data.loader_state)."""

    def __init__(self, pattern: str, rank: int, world_size: int, seed: int, device: str | torch.device = "cpu"):
        self.pattern = pattern
        self.rank = rank
        self.world_size = world_size
        self.device = torch.device(device)
        self.files = find_shards(pattern)
        self.shards = [load_shard(f) for f in self.files]  # read-only memmaps: nothing is read up front
        self.rng = np.random.Generator(np.random.PCG64(_seed([f.name for f in self.files], seed)))
        self.cursors: list[ShardCursor | None] = [None] * len(self.shards)
        self.batches_built = 0

    def _cursor(self, shard: int, seq_len: int) -> ShardCursor | None:
        cursor = self.cursors[shard]
        return cursor if cursor is not None and cursor.seq_len == seq_len else None  # a new seq_len re-cuts

    def _remaining(self, shard: int, seq_len: int) -> int:
        cursor = self._cursor(shard, seq_len)
        return cursor.remaining if cursor is not None else (self.shards[shard].size - 1) // seq_len

    def _take(self, shard: int, seq_len: int) -> int:
        cursor = self._cursor(shard, seq_len)
        if cursor is None:
            cursor = self.cursors[shard] = ShardCursor(self.shards[shard].size, seq_len, self.rng)
        offset = cursor.next_offset()
        if cursor.remaining == 0:
            self.cursors[shard] = None
        return offset

    def global_windows(self, n_windows: int, seq_len: int) -> list[tuple[int, int]]:
        """`(shard, token offset)` of every window of the next global batch; rank r reads r, r + W, ..."""
        eligible = [i for i, s in enumerate(self.shards) if s.size >= seq_len + 1]
        if not eligible:
            raise DataError(f"no shard matching {self.pattern} holds seq_len+1 = {seq_len + 1} tokens",
                            fix="lower train.seq_len or use train.loader=sequential")
        progress = min(self.batches_built / MIX_HORIZON, 1.0)
        weights = np.array([self._remaining(i, seq_len) for i in eligible], dtype=np.float64) ** (0.9 - 0.4 * progress)
        weights /= weights.sum()
        lo = min(max(FEW_SHARDS, self.world_size), len(eligible), n_windows)
        hi = min(max(MANY_SHARDS, 8 * self.world_size), len(eligible), n_windows)
        mix = round(lo + progress * (hi - lo))
        chosen = self.rng.choice(len(eligible), size=mix, replace=False, p=weights)
        shares = 1 + self.rng.multinomial(n_windows - mix, weights[chosen] / weights[chosen].sum())
        queues = []
        for index, share in zip(chosen, shares):
            shard = eligible[index]
            offsets = [self._take(shard, seq_len) for _ in range(share)]
            self.rng.shuffle(offsets)
            queues.append([(shard, offset) for offset in offsets])
        windows = []
        while queues:
            for j in self.rng.permutation(len(queues)):
                windows.append(queues[j].pop())
            queues = [q for q in queues if q]
        self.batches_built += 1
        return windows

    def next_batch(self, global_tokens: int, seq_len: int, grad_accum_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-token targets, each (local_tokens // seq_len, seq_len) int64 on the device."""
        local_tokens = local_batch_tokens(global_tokens, seq_len, self.world_size, grad_accum_steps)
        windows = self.global_windows(self.world_size * (local_tokens // seq_len), seq_len)
        mine = np.stack([self.shards[shard][offset : offset + seq_len + 1]
                         for shard, offset in windows[self.rank :: self.world_size]]).astype(np.int64)
        # Contiguous halves copied by numpy: the same layout the sequential loader hands the model.
        x, y = (torch.from_numpy(np.ascontiguousarray(part)) for part in (mine[:, :-1], mine[:, 1:]))
        return to_device(x, self.device), to_device(y, self.device)
