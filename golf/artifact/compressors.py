"""Byte compressors by name. zstd and brotli are imported lazily so the rest works without them."""

import lzma
import zlib

from golf.errors import ConfigError


def _brotli():
    try:
        import brotli
    except ImportError as exc:
        raise ConfigError("quant.compressor=brotli needs the brotli package",
                          fix="pip install brotli, or use quant.compressor=zstd / lzma") from exc
    return brotli


def compress(data: bytes, name: str, level: int) -> bytes:
    if name == "zlib":
        return zlib.compress(data, level)
    if name == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level).compress(data)
    if name == "lzma":
        return lzma.compress(data, preset=level)
    if name == "brotli":
        return _brotli().compress(data, quality=level)
    if name == "none":
        return data
    raise ValueError(f"unknown compressor {name!r}")


def decompress(data: bytes, name: str) -> bytes:
    if name == "zlib":
        return zlib.decompress(data)
    if name == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data)
    if name == "lzma":
        return lzma.decompress(data)
    if name == "brotli":
        return _brotli().decompress(data)
    if name == "none":
        return data
    raise ValueError(f"unknown compressor {name!r}")
