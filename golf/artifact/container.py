"""The artifact file: one file holding everything needed to rebuild and evaluate the model.

Layout (all counted against the byte limit):

    b"GOLF" | version u8 | len(compressor) u8 | compressor (ascii) | sha256(payload) 32 B | payload

payload = compress(torch.save({"arch": arch fields, "quant": scheme, "weights": ..., "step_state": ...})) for
the int8 and none schemes (the official layout; golf.artifact.int8 holds the int8 weights' layout),
compress(golf.artifact.packed container) for intn / gptq, or the golf.artifact.pergroup layout (which
compresses its own parts) when the compressor is "pergroup". `step_state` is the model state training steps
set (depth recurrence on or off, the late-QAT grid, steps, sequence length): a rebuilt model is the one
that was trained, not its full-depth variant. The sha256 is checked on every load, so a
truncated or altered file is a clear error, never a silent wrong score. Bytes only: the quantizers
live in golf.quant, rebuilding a model in golf.models.registry.
"""

import hashlib
import io
import os
import struct
from dataclasses import asdict, dataclass, is_dataclass
from enum import Enum
from pathlib import Path

import torch

from golf.artifact import int8
from golf.artifact.compressors import compress, decompress
from golf.errors import ArtifactError

MAGIC = b"GOLF"
PACKED_MAGIC = b"GQNT"  # golf.artifact.packed's layout (imported only for such artifacts)
VERSION = 1


def arch_fields(cfg) -> dict:
    """The arch config as the plain fields an artifact stores (a typed config or a plain namespace)."""
    if is_dataclass(cfg):
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(cfg).items()}
    return dict(cfg) if isinstance(cfg, dict) else dict(vars(cfg))


def raw_weights(state: dict[str, torch.Tensor]) -> dict:
    """The weights of an unquantized (`quant.scheme=none`) artifact."""
    return {"format": "raw", "state": {k: v.detach().cpu().contiguous() for k, v in state.items()}}


@dataclass
class Contents:
    arch: dict  # the arch fields the model is rebuilt from
    weights: dict[str, torch.Tensor]  # dequantized state dict
    step_state: dict  # golf.models.gpt.GPT.step_state() and the run's step count / sequence length at the end


def pack(weights: dict, arch, scheme: str, compressor: str, level: int, step_state: dict | None = None) -> bytes:
    """Artifact bytes of the official layout: `weights` from golf.artifact.int8.quantize_state_dict or
    `raw_weights`, serialized with the arch fields and the step state, and compressed."""
    buf = io.BytesIO()
    torch.save({"arch": arch_fields(arch), "quant": str(scheme), "weights": weights, "step_state": step_state or {}},
               buf)
    return frame(buf.getvalue(), compressor, level)


def frame(raw: bytes, compressor: str, level: int) -> bytes:
    """Compress `raw` and put the header (magic, version, compressor name, sha256) in front."""
    return with_header(compress(raw, compressor, level), compressor)


def with_header(payload: bytes, compressor: str) -> bytes:
    name = compressor.encode("ascii")
    header = MAGIC + struct.pack("<BB", VERSION, len(name)) + name + hashlib.sha256(payload).digest()
    return header + payload


def write(path: Path, blob: bytes) -> None:
    """Atomic write: a crash never leaves a half-written artifact under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def unpack(blob: bytes, source: str = "artifact") -> Contents:
    """Verify and decode artifact bytes."""
    if len(blob) < 6 or blob[:4] != MAGIC:
        raise ArtifactError(f"{source}: not a golf artifact (bad magic)", fix="re-export it from the run's job dir")
    version, name_len = struct.unpack("<BB", blob[4:6])
    if version != VERSION:
        raise ArtifactError(f"{source}: artifact version {version}, this golf reads version {VERSION}",
                            fix="use the golf version that wrote it")
    start = 6 + name_len + 32
    if len(blob) < start:
        raise ArtifactError(f"{source}: truncated header ({len(blob)} bytes)", fix="the file is incomplete, rewrite it")
    digest, payload = blob[6 + name_len : start], blob[start:]
    if hashlib.sha256(payload).digest() != digest:
        raise ArtifactError(f"{source}: sha256 mismatch ({len(payload)} payload bytes)",
                            fix="the file is truncated or altered, rewrite it from the run (python -m golf.train ...)")
    try:
        compressor = blob[6 : 6 + name_len].decode("ascii")
        if compressor == "pergroup":
            from golf.artifact import packed, pergroup

            meta, tensors = pergroup.decode(payload)
            return Contents(meta["arch"], packed.dequantize(meta, tensors), meta.get("step_state", {}))
        raw = decompress(payload, compressor)
        if raw[:4] == PACKED_MAGIC:
            from golf.artifact import packed

            meta, tensors = packed.deserialize(raw)
            return Contents(meta["arch"], packed.dequantize(meta, tensors), meta.get("step_state", {}))
        obj = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except ArtifactError:
        raise
    except Exception as exc:  # the header's compressor name is outside the checksum
        raise ArtifactError(f"{source}: cannot decode the payload ({type(exc).__name__}: {exc})",
                            fix="the header is damaged, rewrite the artifact from the run") from exc
    weights = obj["weights"]
    state = int8.dequantize_state_dict(weights) if obj["quant"] == "int8" else weights["state"]
    return Contents(obj["arch"], state, obj.get("step_state", {}))


def payload_sha256(blob: bytes) -> str:
    """The sha256 stored in the header (of the compressed payload), as hex."""
    name_len = blob[5]
    return blob[6 + name_len : 6 + name_len + 32].hex()
