"""The per-group artifact layout (PR #1855's COMPRESSOR=pergroup, kept by #2135): the integer codes of the
quantized matrices are packed apart from everything else, bucketed by role and laid out for the compressor.

    b"PGRP" | u32 header length | JSON header | bucket payloads | remainder payload

- Buckets: the codes of every quantized matrix, grouped by the role category of the matrix
  (golf.models.roles: attn, mlp, embed, ...). In each matrix the rows are reordered by a greedy nearest
  neighbour walk in L1 distance (start at row 0, always step to the closest unvisited row), then written
  column by column, so neighbouring bytes come from similar rows. Each bucket is one stream, compressed
  with lrzip (ZPAQ, `lrzip -z -L 9 -T`) or brotli; the header names the codec of each bucket.
- Remainder: scales, row orders, low-rank factors, float tensors and the meta header, in the
  golf.artifact.packed container, brotli-compressed.

Decoding inverts every step; the tensors come back bit for bit.
"""

import io
import json
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from golf.artifact import packed
from golf.artifact.compressors import compress, decompress
from golf.errors import ArtifactError

MAGIC = b"PGRP"
ROW_ORDER = ".rows"  # suffix of a matrix's row order in the remainder
LRZIP_MISSING = ("the lrzip binary is not on PATH (apt-get install lrzip); "
                 "quant.hot_compressor=auto packs the code buckets with brotli instead")


def similarity_order(codes: np.ndarray) -> np.ndarray:
    """Greedy L1 nearest-neighbour walk over the rows of `codes` [rows, cols], starting at row 0."""
    rows = codes.astype(np.int16)
    n = rows.shape[0]
    order = np.empty(n, dtype=np.int64)
    visited = np.zeros(n, dtype=bool)
    current = 0
    for i in range(n):
        order[i], visited[current] = current, True
        if i + 1 < n:
            distance = np.abs(rows - rows[current]).sum(axis=1, dtype=np.int64)
            distance[visited] = np.iinfo(np.int64).max
            current = int(distance.argmin())
    return order


def lrzip_available() -> bool:
    return shutil.which("lrzip") is not None


def _lrzip(data: bytes, decompress_: bool) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.write_bytes(data)
        # -T: lrzip's LZ4 pre-test would store a dense code stream uncompressed (ratio 1.000 on CPU-size models)
        args = ["-d"] if decompress_ else ["-z", "-L", "9", "-T"]
        done = subprocess.run(["lrzip", "-q", "-f", *args, "-o", str(dst), str(src)], capture_output=True)
        if done.returncode != 0:
            raise ArtifactError(f"lrzip {' '.join(args)} failed ({done.stderr.decode(errors='replace').strip()})")
        return dst.read_bytes()


def _pack_bucket(data: bytes, codec: str, level: int) -> bytes:
    return _lrzip(data, False) if codec == "lrzip" else compress(data, "brotli", level)


def _unpack_bucket(data: bytes, codec: str) -> bytes:
    if codec == "lrzip":
        if not lrzip_available():
            raise ArtifactError("this artifact packs its code buckets with lrzip, which is not on PATH; install it "
                                "(apt-get install lrzip) to read the artifact")
        return _lrzip(data, True)
    return decompress(data, "brotli")


def encode(meta: dict, tensors: dict[str, torch.Tensor], buckets: dict[str, str], codec: str, level: int) -> bytes:
    """`buckets`: quantized matrix name -> bucket name; `codec`: "lrzip" or "brotli" for the buckets."""
    remainder = dict(tensors)
    streams: dict[str, list] = {}
    for name in sorted(meta["quantized"]):
        codes = tensors[name + ".q"]
        if codes.ndim != 2:
            continue
        order = similarity_order(codes.numpy())
        streams.setdefault(buckets[name], []).append((name, codes.numpy()[order].T.tobytes(), codes.shape))
        del remainder[name + ".q"]
        remainder[name + ROW_ORDER] = torch.from_numpy(order.astype(np.int32))
    header, payloads = {"buckets": []}, []
    for bucket in sorted(streams):
        payload = _pack_bucket(b"".join(raw for _, raw, _ in streams[bucket]), codec, level)
        header["buckets"].append({"name": bucket, "codec": codec, "bytes": len(payload),
                                  "tensors": [[name, *shape] for name, _, shape in streams[bucket]]})
        payloads.append(payload)
    rest = compress(packed.serialize(meta, remainder), "brotli", level)
    header["remainder_bytes"] = len(rest)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return MAGIC + struct.pack("<I", len(head)) + head + b"".join(payloads) + rest


def decode(blob: bytes) -> tuple[dict, dict[str, torch.Tensor]]:
    if blob[:4] != MAGIC:
        raise ArtifactError("not a per-group payload (bad magic)", fix="re-export the artifact")
    (head_len,) = struct.unpack("<I", blob[4:8])
    header = json.loads(blob[8 : 8 + head_len].decode("utf-8"))
    stream = io.BytesIO(blob[8 + head_len :])
    codes = {}
    for bucket in header["buckets"]:
        raw = _unpack_bucket(stream.read(bucket["bytes"]), bucket["codec"])
        offset = 0
        for name, rows, cols in bucket["tensors"]:
            block = np.frombuffer(raw, np.int8, rows * cols, offset).reshape(cols, rows).T
            codes[name] = block
            offset += rows * cols
    meta, tensors = packed.deserialize(decompress(stream.read(header["remainder_bytes"]), "brotli"))
    for name, sorted_rows in codes.items():
        order = tensors.pop(name + ROW_ORDER).numpy()
        rows = np.empty_like(sorted_rows)
        rows[order] = sorted_rows
        tensors[name + ".q"] = torch.from_numpy(rows)
    return meta, tensors
