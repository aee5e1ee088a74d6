"""Writing token shards in the official format (golf.data.shards): the data builders' side, never a record's."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

from golf.data.shards import HEADER_INTS, SHARD_MAGIC, SHARD_VERSION
from golf.errors import DataError

MAX_TOKEN_ID = 2**16 - 1


def write_shard(path: str | Path, tokens) -> None:
    """Write `tokens` as one shard; readers never see a half-written file."""
    path = Path(path)
    values = np.asarray(tokens)
    if values.ndim != 1:
        raise DataError(
            f"{path}: tokens must be a 1-D sequence, got shape {values.shape}; pass a flat list of ids"
        )
    if values.size and (values.min() < 0 or values.max() > MAX_TOKEN_ID):
        raise DataError(
            f"{path}: token ids must lie in [0, {MAX_TOKEN_ID}] to fit uint16, got range "
            f"[{values.min()}, {values.max()}]; use a tokenizer with at most 65536 pieces"
        )
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0] = SHARD_MAGIC
    header[1] = SHARD_VERSION
    header[2] = values.size
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique sibling name keeps concurrent writers apart; os.replace makes the swap atomic.
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp_path, "xb") as f:
            f.write(header.tobytes())
            f.write(values.astype("<u2").tobytes())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
