"""Byte compressors by name. zstd is imported lazily so the rest works without it."""

import lzma
import zlib


def compress(data: bytes, name: str, level: int) -> bytes:
    if name == "zlib":
        return zlib.compress(data, level)
    if name == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level).compress(data)
    if name == "lzma":
        return lzma.compress(data, preset=level)
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
    if name == "none":
        return data
    raise ValueError(f"unknown compressor {name!r}")
