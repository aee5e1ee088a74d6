"""The official Parameter Golf token shard format, and reading it.

A shard is a 1024-byte header of 256 little-endian int32 (magic 20240520, version 1, token count,
the rest zero) followed by that many little-endian uint16 token ids. golf.data.shard_writer writes them
byte-compatible with the official FineWeb export, so official shards and golf-built shards are
interchangeable.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from golf.errors import DataError

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4

# Called with the path of every shard opened: golf.data.access, once imported (golf's jobs), enters each read in
# the run's access log; a record's train_gpt.py reads without it.
READ_HOOKS: list = []
_REBUILD_HINT = "rebuild it with python -m golf.data.build or re-download with python -m golf.data.fineweb"
_GET_DATA_HINT = (
    "download official shards with python -m golf.data.fineweb --variant sp1024 --train-shards 10, "
    "use the built-in corpus with data=demo, or build your own with python -m golf.data.build"
)


def read_shard_header(path: str | Path) -> int:
    """Validate a shard's header and size; return its token count."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: shard file not found", fix=_GET_DATA_HINT)
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise DataError(
            f"{path}: file is {size} bytes, shorter than the {HEADER_BYTES}-byte shard header; "
            f"the file is truncated or not a shard", fix=_REBUILD_HINT
        )
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    magic, version, num_tokens = (int(v) for v in header[:3])
    if magic != SHARD_MAGIC:
        raise DataError(
            f"{path}: bad magic {magic} (expected {SHARD_MAGIC}); the file is not a "
            f"golf/parameter-golf shard", fix=_REBUILD_HINT
        )
    if version != SHARD_VERSION:
        raise DataError(
            f"{path}: unsupported shard version {version} (expected {SHARD_VERSION})", fix=_REBUILD_HINT
        )
    expected_size = HEADER_BYTES + 2 * num_tokens
    if num_tokens < 0 or size != expected_size:
        raise DataError(
            f"{path}: header says {num_tokens} tokens, so the file should be {expected_size} bytes, "
            f"but it is {size} bytes (truncated or corrupt download)", fix=_REBUILD_HINT
        )
    return num_tokens


def load_shard(path: str | Path) -> np.ndarray:
    """Return a read-only memmap over the shard's tokens (no copy); the read goes to READ_HOOKS."""
    num_tokens = read_shard_header(path)
    for hook in READ_HOOKS:
        hook(path)
    if num_tokens == 0:
        # np.memmap refuses zero-length maps; an empty array behaves the same for readers.
        return np.empty(0, dtype="<u2")
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(num_tokens,))


def find_shards(pattern: str) -> list[Path]:
    """Sorted shard paths matching a glob pattern; a clear error when there are none."""
    matches = sorted(glob.glob(os.path.expanduser(pattern)))
    if not matches:
        raise DataError(f"no shard files match {pattern}", fix=_GET_DATA_HINT)
    return [Path(m) for m in matches]
