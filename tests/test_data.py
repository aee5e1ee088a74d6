"""Shard format and token loaders (golf.data.shards, golf.data.loader)."""

import json
import struct

import numpy as np
import pytest
import torch
from optional_assets import needs_cuda

from golf.data.loader import DistributedTokenLoader, TokenStream, load_validation_tokens
from golf.data.loader_state import loader_state, restore_loader, restore_stream
from golf.data.shard_writer import write_shard
from golf.data.shards import HEADER_BYTES, SHARD_MAGIC, find_shards, load_shard, read_shard_header
from golf.errors import ConfigError, DataError


def test_shard_round_trip_and_exact_bytes(tmp_path):
    path = tmp_path / "x_train_000000.bin"
    write_shard(path, [0, 1, 65535, 42])
    raw = path.read_bytes()
    assert len(raw) == HEADER_BYTES + 8
    assert raw[:12] == struct.pack("<iii", SHARD_MAGIC, 1, 4)
    assert raw[12:HEADER_BYTES] == bytes(HEADER_BYTES - 12)
    assert raw[HEADER_BYTES:] == struct.pack("<4H", 0, 1, 65535, 42)
    assert read_shard_header(path) == 4
    tokens = load_shard(path)
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.dtype("<u2")
    assert not tokens.flags.writeable
    assert tokens.tolist() == [0, 1, 65535, 42]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_empty_shard_loads_as_empty_array(tmp_path):
    write_shard(tmp_path / "e.bin", [])
    assert read_shard_header(tmp_path / "e.bin") == 0
    assert load_shard(tmp_path / "e.bin").size == 0


@pytest.mark.parametrize("bad", [-1, 65536])
def test_write_shard_rejects_ids_outside_uint16(tmp_path, bad):
    with pytest.raises(DataError, match=r"\[0, 65535\]"):
        write_shard(tmp_path / "s.bin", [5, bad])
    assert list(tmp_path.iterdir()) == []


def _corrupt(path, case):
    raw = bytearray(path.read_bytes())
    if case == "magic":
        raw[0:4] = struct.pack("<i", 12345)
    elif case == "version":
        raw[4:8] = struct.pack("<i", 7)
    elif case == "truncated":
        raw = raw[:-1]
    elif case == "extra":
        raw += b"\x00\x00"
    elif case == "short":
        raw = raw[:500]
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "case, message",
    [
        ("magic", r"bad magic 12345 \(expected 20240520\).*golf\.data\.build.*golf\.data\.fineweb"),
        ("version", r"unsupported shard version 7 \(expected 1\)"),
        ("truncated", r"header says 10 tokens, so the file should be 1044 bytes, but it is 1043 bytes"),
        ("extra", r"should be 1044 bytes, but it is 1046 bytes"),
        ("short", r"file is 500 bytes, shorter than the 1024-byte shard header"),
    ],
)
def test_corrupt_shards_raise_data_error_naming_the_file(tmp_path, case, message):
    path = tmp_path / "fineweb_train_000003.bin"
    write_shard(path, range(10))
    _corrupt(path, case)
    for read in (read_shard_header, load_shard):
        with pytest.raises(DataError, match=message) as info:
            read(path)
        assert str(path) in str(info.value)
        assert "\n" not in str(info.value)


def test_missing_shard_and_empty_glob_say_how_to_get_data(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_shard_header(tmp_path / "nope.bin")
    with pytest.raises(
        DataError, match=r"no shard files match .*--train-shards 10.*data=demo.*golf\.data\.build"
    ):
        find_shards(str(tmp_path / "*_train_*.bin"))


def test_find_shards_is_sorted(tmp_path):
    for i in (2, 0, 10, 1):
        write_shard(tmp_path / f"d_train_{i:06d}.bin", [i])
    found = find_shards(str(tmp_path / "d_train_*.bin"))
    assert [p.name for p in found] == [f"d_train_{i:06d}.bin" for i in (0, 1, 2, 10)]


@pytest.fixture
def two_shards(tmp_path):
    """Stream 0..24: shard 0 holds tokens 0..9, shard 1 holds 10..24."""
    write_shard(tmp_path / "s_train_000000.bin", range(10))
    write_shard(tmp_path / "s_train_000001.bin", range(10, 25))
    return str(tmp_path / "s_train_*.bin")


def test_token_stream_crosses_shards_and_wraps(two_shards):
    stream = TokenStream(two_shards)
    first = stream.take(8)
    assert first.dtype == np.int64 and first.tolist() == list(range(8))
    assert stream.take(5).tolist() == [8, 9, 10, 11, 12]
    assert stream.take(15).tolist() == list(range(13, 25)) + [0, 1, 2]
    assert stream.take(0).tolist() == []
    assert stream.take(30).tolist() == list(range(3, 25)) + list(range(8))


def test_loader_world_size_1_matches_baseline_slicing(two_shards):
    loader = DistributedTokenLoader(two_shards, rank=0, world_size=1)
    # local_tokens = 8, span = 9: each batch consumes 9 stream tokens.
    x, y = loader.next_batch(global_tokens=8, seq_len=4, grad_accum_steps=1)
    assert x.dtype == torch.int64 and x.device.type == "cpu"
    assert x.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert y.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    x, y = loader.next_batch(8, 4, 1)  # crosses into shard 1
    assert x.tolist() == [[9, 10, 11, 12], [13, 14, 15, 16]]
    assert y.tolist() == [[10, 11, 12, 13], [14, 15, 16, 17]]
    x, y = loader.next_batch(8, 4, 1)  # wraps to shard 0
    assert x.tolist() == [[18, 19, 20, 21], [22, 23, 24, 0]]
    assert y.tolist() == [[19, 20, 21, 22], [23, 24, 0, 1]]


def test_loader_world_size_2_gives_disjoint_adjacent_spans(two_shards):
    rank0 = DistributedTokenLoader(two_shards, rank=0, world_size=2)
    rank1 = DistributedTokenLoader(two_shards, rank=1, world_size=2)
    # local_tokens = 8 // (2 * 2) = 2, span = 3, chunk = 6 tokens per call.
    assert [t.tolist() for t in rank0.next_batch(8, 2, 2)] == [[[0, 1]], [[1, 2]]]
    assert [t.tolist() for t in rank1.next_batch(8, 2, 2)] == [[[3, 4]], [[4, 5]]]
    assert [t.tolist() for t in rank0.next_batch(8, 2, 2)] == [[[6, 7]], [[7, 8]]]
    assert [t.tolist() for t in rank1.next_batch(8, 2, 2)] == [[[9, 10]], [[10, 11]]]
    # local_tokens = 8, span = 9, chunk = 18: rank 1 starts right after rank 0's span.
    rank0 = DistributedTokenLoader(two_shards, rank=0, world_size=2)
    rank1 = DistributedTokenLoader(two_shards, rank=1, world_size=2)
    x0, y0 = rank0.next_batch(16, 4, 1)
    x1, y1 = rank1.next_batch(16, 4, 1)
    assert x0.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]] and y0[-1, -1] == 8
    assert x1.tolist() == [[9, 10, 11, 12], [13, 14, 15, 16]] and y1[-1, -1] == 17


def test_loader_rejects_batch_not_divisible_by_seq_len(two_shards):
    loader = DistributedTokenLoader(two_shards, rank=0, world_size=2)
    with pytest.raises(ConfigError, match=r"train\.batch_tokens=20 .*train\.seq_len=4.*multiple of 16"):
        loader.next_batch(20, 4, 2)
    with pytest.raises(ConfigError, match="not a positive"):
        loader.next_batch(3, 1, 2)


def test_loader_resume_gives_the_same_next_batch(two_shards):
    loader = DistributedTokenLoader(two_shards, rank=1, world_size=2)
    for _ in range(3):
        loader.next_batch(12, 3, 1)
    state = json.loads(json.dumps(loader_state(loader)))
    expected = loader.next_batch(12, 3, 1)
    resumed = DistributedTokenLoader(two_shards, rank=1, world_size=2)
    restore_loader(resumed, state)
    got = resumed.next_batch(12, 3, 1)
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    assert loader_state(loader) == loader_state(resumed)


def test_resume_with_other_shards_is_a_data_error(two_shards):
    stream = TokenStream(two_shards)
    with pytest.raises(DataError, match="shard #5"):
        restore_stream(stream, {"file_index": 5, "position": 0})
    with pytest.raises(DataError, match="past the end"):
        restore_stream(stream, {"file_index": 0, "position": 11})


def test_all_empty_shards_are_rejected(tmp_path):
    write_shard(tmp_path / "z_train_000000.bin", [])
    with pytest.raises(DataError, match="empty"):
        TokenStream(str(tmp_path / "z_train_*.bin"))


def test_validation_tokens_concatenate_and_truncate(tmp_path):
    write_shard(tmp_path / "v_val_000001.bin", range(10, 25))
    write_shard(tmp_path / "v_val_000000.bin", range(10))
    pattern = str(tmp_path / "v_val_*.bin")
    tokens = load_validation_tokens(pattern, seq_len=7)
    assert tokens.dtype == torch.int32 and tokens.device.type == "cpu"
    assert tokens.tolist() == list(range(22))  # ((25 - 1) // 7) * 7 + 1
    assert load_validation_tokens(pattern, seq_len=4).tolist() == list(range(25))
    assert load_validation_tokens(pattern, seq_len=24).numel() == 25
    with pytest.raises(
        DataError, match=r"has 25 tokens, fewer than one sequence of seq_len\+1 = 26; lower eval\.seq_len"
    ):
        load_validation_tokens(pattern, seq_len=25)


@needs_cuda
def test_loader_cuda_batches_match_cpu(two_shards):
    cpu = DistributedTokenLoader(two_shards, rank=1, world_size=2)
    gpu = DistributedTokenLoader(two_shards, rank=1, world_size=2, device="cuda")
    for _ in range(4):
        (xc, yc), (xg, yg) = cpu.next_batch(16, 4, 1), gpu.next_batch(16, 4, 1)
        assert xg.device.type == "cuda" and xg.dtype == torch.int64
        assert torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())
