"""The per-token byte sidecar of a transformed dataset (CaseOps, PR #1729): how many bytes of the ORIGINAL
UTF-8 text each val token stands for, so BPB is charged on the untransformed text.

Files `<prefix>_val_bytes_NNNNNN.bin` sit next to the val shards `<prefix>_val_NNNNNN.bin`, in the same
shard format (uint16 values), one value per token and shard for shard the same lengths: entry i is the
original-byte count of val token i (BOS and case operators 0). Per document the entries sum to the
document's original UTF-8 length.

How an evaluation uses it: the target at prediction position p (input token p, predicting token p + 1 of
the val stream) is charged `sidecar[p + 1]` bytes; a window whose inputs are tokens[o : o + T] is charged
sidecar[o + 1 : o + T + 1]. `load_byte_sidecar` returns the sidecar trimmed exactly like
golf.data.loader.load_validation_tokens, so the two tensors index the same positions.
"""

from pathlib import Path

import numpy as np
import torch

from golf.data.loader import load_validation_tokens
from golf.data.shard_writer import write_shard
from golf.data.shards import find_shards, read_shard_header
from golf.errors import DataError

MAX_TOKEN_BYTES = 2**16 - 1


def sidecar_path(val_shard: str | Path) -> Path:
    """`<prefix>_val_NNNNNN.bin` -> `<prefix>_val_bytes_NNNNNN.bin`."""
    path = Path(val_shard)
    prefix, sep, index = path.name.rpartition("_val_")
    if not sep:
        raise DataError(f"{path.name} is not a val shard name (<prefix>_val_NNNNNN.bin)")
    return path.with_name(f"{prefix}_val_bytes_{index}")


def write_sidecar(path: str | Path, token_bytes: np.ndarray) -> None:
    if token_bytes.size and int(token_bytes.max()) > MAX_TOKEN_BYTES:
        raise DataError(f"{path}: a token stands for {int(token_bytes.max())} original bytes, more than the "
                        f"uint16 sidecar holds; the tokenizer merged an extreme whitespace run, split that document")
    write_shard(path, token_bytes.astype(np.uint16))


def check_sidecar_alignment(val_pattern: str, bytes_pattern: str) -> None:
    """Every val shard has its sidecar, with as many entries as it has tokens; nothing else matches."""
    val = find_shards(val_pattern)
    sidecars = find_shards(bytes_pattern)
    expected = [sidecar_path(p) for p in val]
    if [p.resolve() for p in sidecars] != [p.resolve() for p in expected]:
        raise DataError(f"byte sidecars {bytes_pattern} ({len(sidecars)} files) do not pair one-to-one with the "
                        f"val shards {val_pattern} ({len(val)} files, e.g. {expected[0].name})",
                        fix="make the val pattern match only <prefix>_val_NNNNNN.bin, or re-download / rebuild the "
                            "dataset")
    for shard, sidecar in zip(val, sidecars, strict=True):
        tokens, entries = read_shard_header(shard), read_shard_header(sidecar)
        if tokens != entries:
            raise DataError(f"{sidecar.name} has {entries} entries for the {tokens} tokens of {shard.name}; the "
                            f"sidecar belongs to another export, re-download or rebuild the dataset")


def load_byte_sidecar(bytes_pattern: str, val_pattern: str, seq_len: int) -> torch.Tensor:
    """int32 original-byte counts aligned index for index with load_validation_tokens(val_pattern, seq_len)."""
    check_sidecar_alignment(val_pattern, bytes_pattern)
    return load_validation_tokens(bytes_pattern, seq_len)
