"""Token loaders: the official baseline sequential training loader and the validation stream.

The training loader reproduces the official baseline exactly: one global stream over the
sorted train shards, wrapping forever; every call takes `world_size` adjacent spans of
`local_tokens + 1` tokens and each rank keeps its own span. Every rank reads the same stream, so
ranks need no communication and together see each token once per pass.
"""

from __future__ import annotations

import numpy as np
import torch

from golf.data.shards import find_shards, load_shard
from golf.errors import ConfigError, DataError


def local_batch_tokens(global_tokens: int, seq_len: int, world_size: int, grad_accum_steps: int) -> int:
    """Tokens one rank feeds one micro-batch: a positive multiple of `seq_len`, else a ConfigError."""
    local_tokens = global_tokens // (world_size * grad_accum_steps)
    if local_tokens <= 0 or local_tokens % seq_len != 0:
        raise ConfigError(
            f"train.batch_tokens={global_tokens} / (world size {world_size} x grad accum "
            f"{grad_accum_steps}) = {local_tokens} tokens per micro-batch, which is not a positive "
            f"multiple of train.seq_len={seq_len}",
            fix=f"set train.batch_tokens to a multiple of {world_size * grad_accum_steps * seq_len}",
        )
    return local_tokens


def to_device(tokens: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        # One pinned host-to-device copy that overlaps with compute.
        return tokens.pin_memory().to(device, non_blocking=True)
    return tokens.to(device)


class TokenStream:
    """Reads the sorted shards matching `pattern` front to back, forever."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.files = find_shards(pattern)
        self.file_index = 0
        self.position = 0
        self.tokens = load_shard(self.files[0])
        if self.tokens.size == 0 and all(load_shard(f).size == 0 for f in self.files):
            raise DataError(
                f"every shard matching {pattern} is empty", fix="rebuild the data with python -m golf.data.build"
            )

    def _advance_file(self) -> None:
        self.file_index = (self.file_index + 1) % len(self.files)
        self.tokens = load_shard(self.files[self.file_index])
        self.position = 0

    def take(self, n: int) -> np.ndarray:
        """The next `n` tokens as an int64 copy, crossing shard boundaries as needed."""
        chunks = []
        remaining = n
        while remaining > 0:
            available = self.tokens.size - self.position
            if available <= 0:
                self._advance_file()
                continue
            count = min(remaining, available)
            chunks.append(self.tokens[self.position : self.position + count])
            self.position += count
            remaining -= count
        if not chunks:
            return np.empty(0, dtype=np.int64)
        return np.concatenate(chunks, dtype=np.int64)


class DistributedTokenLoader:
    """The official baseline loader: each rank keeps its span of one shared global chunk."""

    def __init__(self, pattern: str, rank: int, world_size: int, device: str | torch.device = "cpu"):
        self.rank = rank
        self.world_size = world_size
        self.device = torch.device(device)
        self.stream = TokenStream(pattern)

    def next_batch(
        self, global_tokens: int, seq_len: int, grad_accum_steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-token targets, each (local_tokens // seq_len, seq_len) int64 on the device."""
        local_tokens = local_batch_tokens(global_tokens, seq_len, self.world_size, grad_accum_steps)
        span = local_tokens + 1
        chunk = self.stream.take(span * self.world_size)
        local = to_device(torch.from_numpy(chunk[self.rank * span : (self.rank + 1) * span]), self.device)
        return local[:-1].view(-1, seq_len), local[1:].view(-1, seq_len)


def load_validation_tokens(pattern: str, seq_len: int) -> torch.Tensor:
    """All val shards in sorted order, trimmed so every length-`seq_len` sequence is complete."""
    shards = [load_shard(path) for path in find_shards(pattern)]
    total = sum(shard.size for shard in shards)
    if total < seq_len + 1:
        raise DataError(
            f"val split {pattern} has {total} tokens, fewer than one sequence of seq_len+1 = "
            f"{seq_len + 1}", fix="lower eval.seq_len or add val data"
        )
    usable = ((total - 1) // seq_len) * seq_len + 1
    tokens = np.empty(usable, dtype=np.int32)
    filled = 0
    for shard in shards:
        count = min(shard.size, usable - filled)
        tokens[filled : filled + count] = shard[:count]
        filled += count
        if filled == usable:
            break
    return torch.from_numpy(tokens)
