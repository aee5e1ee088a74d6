"""golf.data.demo: the offline default dataset is deterministic, sized as documented and cached."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from golf.data import demo
from golf.data.demo import demo_dir_name, demo_sha256, ensure_demo
from golf.data.loader import DistributedTokenLoader, load_validation_tokens
from golf.data.shards import find_shards, load_shard
from golf.data.tokenizer import check_tokens_in_vocab, check_vocab, load_tokenizer
from golf.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_builds(tmp_path_factory):
    """Two independent from-scratch builds: one by the CLI in a fresh interpreter (its own hash
    seed) through $GOLF_CACHE, one in this process with an explicit cache_dir."""
    first_cache = tmp_path_factory.mktemp("cache_a")
    second_cache = tmp_path_factory.mktemp("cache_b")
    env = {**os.environ, "GOLF_CACHE": str(first_cache), "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "golf.data.demo"], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    first = first_cache / demo_dir_name()
    assert result.stdout.strip() == f"{first} sha256 {demo_sha256(first)}"
    second = ensure_demo(second_cache)
    return first_cache, first, second


def test_demo_builds_are_byte_identical(demo_builds):
    first_cache, first, second = demo_builds
    assert first == first_cache / demo_dir_name() and first.name.startswith("demo-py3")
    assert demo_sha256(first) == demo_sha256(second)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
    assert [p.name for p in first_cache.iterdir()] == [first.name]  # no staging directories left


def test_demo_size_matches_documentation(demo_builds):
    manifest = json.loads((demo_builds[1] / "manifest.json").read_text())
    assert manifest["name"] == "demo" and manifest["vocab_size"] == 1024
    assert 1_500_000 <= manifest["num_tokens"]["train"] <= 3_000_000
    assert 150_000 <= manifest["num_tokens"]["val"] <= 250_000
    assert manifest["num_docs"]["val"] >= 10 and manifest["num_docs"]["train"] >= 200


def test_demo_feeds_the_loaders(demo_builds):
    path = demo_builds[1]
    tokenizer = load_tokenizer(path / "tokenizer.model")
    check_vocab(tokenizer, 1024, path / "tokenizer.model")
    for shard in find_shards(str(path / "demo_*.bin")):
        check_tokens_in_vocab(load_shard(shard), 1024, str(shard))
    val = load_validation_tokens(str(path / "demo_val_*.bin"), seq_len=1024)
    assert val.numel() % 1024 == 1 and val[0] == tokenizer.bos_id()
    x, y = DistributedTokenLoader(str(path / "demo_train_*.bin"), rank=0, world_size=1).next_batch(
        8192, 1024, 1
    )
    assert x.shape == (8, 1024) and x[0, 0] == tokenizer.bos_id()


def test_ensure_demo_reuses_an_existing_build(demo_builds, monkeypatch):
    def must_not_build(*args, **kwargs):
        raise AssertionError("rebuilt a cached demo dataset")

    monkeypatch.setattr(demo, "build_dataset", must_not_build)
    assert ensure_demo(demo_builds[0]) == demo_builds[1]


def test_concurrent_builder_keeps_the_first_finished_dataset(tmp_path, monkeypatch):
    target = tmp_path / demo_dir_name()

    def build_while_another_process_finishes(documents, out_dir, vocab_size, val_docs, name):
        target.mkdir()
        (target / "manifest.json").write_text(json.dumps({"sha256": "winner"}))
        out_dir.mkdir()
        (out_dir / "manifest.json").write_text(json.dumps({"sha256": "loser"}))

    monkeypatch.setattr(demo, "demo_corpus", lambda: (["doc one", "doc two"], 1))
    monkeypatch.setattr(demo, "build_dataset", build_while_another_process_finishes)
    assert ensure_demo(tmp_path) == target
    assert demo_sha256(target) == "winner"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_demo_sha256_without_manifest(tmp_path):
    with pytest.raises(DataError, match="manifest.json not found; delete"):
        demo_sha256(tmp_path)
