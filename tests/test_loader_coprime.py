"""The coprime-stride multi-shard loader (golf.data.coprime_loader): permutation passes, disjoint
ranks, determinism, resume and the batch shapes it yields."""

import json
from collections import defaultdict

import numpy as np
import pytest
import torch

from golf.config.train import LoaderName, TrainConfig
from golf.data.coprime_loader import CoprimeLoader, ShardCursor
from golf.data.loader_state import loader_state, restore_loader
from golf.data.shard_writer import write_shard
from golf.data.train_loader import build_train_loader
from golf.errors import ConfigError, DataError

# Token value = 5000 * shard + position, so every window names its shard and offset.
SIZES = (301, 420, 257, 380)
T = 8


@pytest.fixture
def shards(tmp_path):
    for i, n in enumerate(SIZES):
        write_shard(tmp_path / f"c_train_{i:06d}.bin", [5000 * i + j for j in range(n)])
    return str(tmp_path / "c_train_*.bin")


def _where(x: torch.Tensor) -> list[tuple[int, int]]:
    return [(int(row[0]) // 5000, int(row[0]) % 5000) for row in x]


@pytest.mark.parametrize("n_tokens, seq_len, seed", [(301, 8, 0), (1000, 7, 1), (65, 16, 2), (18, 8, 3), (9, 8, 4)])
def test_cursor_visits_every_block_once_per_pass(n_tokens, seq_len, seed):
    cursor = ShardCursor(n_tokens, seq_len, np.random.default_rng(seed))
    assert 0 <= cursor.phase < seq_len and cursor.count == (n_tokens - 1 - cursor.phase) // seq_len >= 1
    offsets = [cursor.next_offset() for _ in range(cursor.count)]
    assert sorted(offsets) == [cursor.phase + b * seq_len for b in range(cursor.count)]
    assert max(offsets) + seq_len + 1 <= n_tokens  # every window (inputs + shifted targets) fits
    assert cursor.remaining == 0


def test_each_shard_is_a_full_permutation_before_any_repeat_and_ranks_are_disjoint(shards):
    ranks = [CoprimeLoader(shards, rank, 2, seed=7) for rank in range(2)]
    taken = defaultdict(list)  # shard -> offsets per global batch, in order
    for _ in range(60):
        batches = [loader.next_batch(global_tokens=2 * 4 * T, seq_len=T, grad_accum_steps=1) for loader in ranks]
        mine = [_where(x) for x, _ in batches]
        assert all(len(m) == 4 for m in mine)
        assert not set(mine[0]) & set(mine[1])  # ranks never share a window
        for x, y in batches:
            assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y[:, -1] - x[:, -1], torch.ones(4).long())
        per_shard = defaultdict(list)
        for shard, offset in mine[0] + mine[1]:
            per_shard[shard].append(offset)
        for shard in range(len(SIZES)):
            taken[shard].append(per_shard[shard])
    for shard, n in enumerate(SIZES):
        batches = [b for b in taken[shard] if b]
        phase = batches[0][0] % T
        count = (n - 1 - phase) // T
        seen = []
        for batch in batches:
            if len(seen) + len(batch) >= count:  # the batch that finishes the first pass
                assert set(seen + batch) >= {phase + b * T for b in range(count)}
                break
            seen += batch
            assert len(set(seen)) == len(seen)  # no repeat before the shard is exhausted
            assert all(offset % T == phase for offset in seen)
        else:
            pytest.fail(f"shard {shard} never finished a pass in 60 batches")


def test_same_shards_and_seed_give_the_same_batches(shards):
    a, b, other = (CoprimeLoader(shards, 0, 1, seed=s) for s in (3, 3, 4))
    first = [a.next_batch(64, T, 2)[0] for _ in range(5)]
    assert all(torch.equal(x, b.next_batch(64, T, 2)[0]) for x in first)
    assert not all(torch.equal(x, other.next_batch(64, T, 2)[0]) for x in first)


def test_a_batch_mixes_several_shards_from_the_start(shards):
    loader = CoprimeLoader(shards, 0, 1, seed=0)
    windows = loader.global_windows(n_windows=16, seq_len=T)
    assert len(windows) == 16 and {shard for shard, _ in windows} == set(range(len(SIZES)))


def test_resume_gives_the_same_next_batches(shards):
    loader = CoprimeLoader(shards, 1, 2, seed=11)
    for _ in range(7):
        loader.next_batch(64, T, 1)
    state = json.loads(json.dumps(loader_state(loader)))  # plain data, as a checkpoint stores it
    expected = [loader.next_batch(64, T, 1) for _ in range(3)]
    resumed = CoprimeLoader(shards, 1, 2, seed=11)
    restore_loader(resumed, state)
    for x, y in expected:
        rx, ry = resumed.next_batch(64, T, 1)
        assert torch.equal(x, rx) and torch.equal(y, ry)


def test_a_new_seq_len_recuts_the_shards(shards):
    loader = CoprimeLoader(shards, 0, 1, seed=2)
    loader.next_batch(64, T, 1)
    x, y = loader.next_batch(64, 16, 1)
    assert x.shape == y.shape == (4, 16)
    for shard, offset in _where(x):
        cursor = loader.cursors[shard]
        assert cursor is None or (cursor.seq_len == 16 and offset % 16 == cursor.phase)


def test_shape_errors_and_short_shards(shards):
    loader = build_train_loader(TrainConfig(loader=LoaderName.coprime), shards, rank=0, world_size=2, seed=0)
    assert isinstance(loader, CoprimeLoader)
    with pytest.raises(ConfigError, match="multiple of train.seq_len=8"):
        loader.next_batch(20, T, 1)
    with pytest.raises(DataError, match="seq_len\\+1 = 1025 tokens"):
        loader.next_batch(2 * 1024, 1024, 1)
    with pytest.raises(DataError, match="covers 2 shards, but 4 match"):
        restore_loader(loader, {**loader_state(loader), "cursors": [None, None]})
