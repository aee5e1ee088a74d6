"""The container of intn / gptq artifacts, laid out for the compressor.

    b"GQNT" | u32 header length | JSON header | sections

Tensors are grouped by dtype (the int8 codes of all matrices first, in state-dict order, so one
distribution runs uninterrupted), and each group of multi-byte values is byte-shuffled (all first
bytes, then all second bytes, ...): exponent bytes of fp16 scales are nearly constant and compress
to almost nothing once they sit together. Decoding is exact: the same bytes come back.
"""

import json
import struct

import numpy as np
import torch

from golf.artifact import container
from golf.artifact.corrections import reconstruct

MAGIC = b"GQNT"  # golf.artifact.container.PACKED_MAGIC


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name.removeprefix("torch."))


def _group_order(dtype: str) -> tuple[int, str]:
    return (0 if dtype == "torch.int8" else 1, dtype)


def pack(meta: dict, tensors: dict[str, torch.Tensor], arch, compressor: str, level: int,
         step_state: dict | None = None, buckets: dict[str, str] | None = None, hot_codec: str = "brotli") -> bytes:
    """Artifact bytes of an intn / gptq export (`meta` and `tensors` as `serialize` takes them), behind the
    golf.artifact.container header; the "pergroup" compressor takes each quantized matrix's bucket and the
    codec of the buckets."""
    meta = {**meta, "arch": container.arch_fields(arch), "step_state": step_state or {}}
    if compressor == "pergroup":
        from golf.artifact import pergroup

        return container.with_header(pergroup.encode(meta, tensors, buckets or {}, hot_codec, level), compressor)
    return container.frame(serialize(meta, tensors), compressor, level)


def serialize(meta: dict, tensors: dict[str, torch.Tensor]) -> bytes:
    groups: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        groups.setdefault(str(t.dtype), []).append((name, t))
    entries, sections = [], []
    for dtype in sorted(groups, key=_group_order):
        members = groups[dtype]
        raw = np.concatenate([t.reshape(-1).view(torch.uint8).numpy() for _, t in members])
        itemsize = members[0][1].element_size()
        sections.append(raw.reshape(-1, itemsize).T.tobytes())
        entries.extend([name, dtype, list(t.shape)] for name, t in members)
    header = json.dumps({"meta": meta, "tensors": entries}, separators=(",", ":")).encode("utf-8")
    return MAGIC + struct.pack("<I", len(header)) + header + b"".join(sections)


def deserialize(blob: bytes) -> tuple[dict, dict[str, torch.Tensor]]:
    (header_len,) = struct.unpack("<I", blob[4:8])
    header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    offset, tensors = 8 + header_len, {}
    entries = header["tensors"]
    i = 0
    while i < len(entries):
        dtype = entries[i][1]
        j = i
        while j < len(entries) and entries[j][1] == dtype:
            j += 1
        group = entries[i:j]
        itemsize = torch.empty((), dtype=_dtype(dtype)).element_size()
        count = sum(int(np.prod(shape)) for _, _, shape in group)
        size = count * itemsize
        raw = np.frombuffer(blob, np.uint8, size, offset).reshape(itemsize, count).T.copy().reshape(-1)
        offset += size
        start = 0
        for name, _, shape in group:
            n = int(np.prod(shape)) * itemsize
            tensors[name] = torch.from_numpy(raw[start : start + n].copy()).view(_dtype(dtype)).reshape(shape)
            start += n
        i = j
    return header["meta"], tensors


def dequantize(meta: dict, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights in their original dtypes: codes x per-row scale (+ the extras of golf.artifact.corrections)
    for quantized matrices, the rest as stored."""
    out = {}
    for name in meta["order"]:
        if name in meta["quantized"]:
            entry = meta["quantized"][name]
            out[name] = reconstruct(name, entry, tensors).to(_dtype(entry["dtype"])).contiguous()
        else:
            t = tensors[name]
            orig = meta["orig_dtypes"].get(name)
            out[name] = t.to(_dtype(orig)).contiguous() if orig else t
    return out
