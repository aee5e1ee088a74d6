"""Tests that need optional assets say what they skipped and how to get it; `python -m golf.data.fineweb
--tokenizers-only` fetches the official tokenizers to where those tests look (the hub download mocked)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import optional_assets
import pytest

from golf.data import fineweb
from golf.data.build import train_tokenizer

INNER_TESTS = '''
import pytest
from optional_assets import official_tokenizer

def test_present():
    official_tokenizer(1024)

@pytest.mark.parametrize("vocab", [3, 5])
def test_missing(vocab):
    official_tokenizer(vocab)

def test_skipped_for_another_reason():
    pytest.skip("not about an asset")
'''


def run_inner_pytest(tmp_path: Path, tokenizers: Path) -> str:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    paths = [str(optional_assets.REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "GOLF_TOKENIZERS": str(tokenizers), "PYTHONPATH": os.pathsep.join(paths)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_summary_names_each_missing_asset_its_skips_and_the_fix(tmp_path):
    tokenizers = tmp_path / "tokenizers"
    tokenizers.mkdir()
    (tokenizers / "fineweb_1024_bpe.model").write_bytes(b"found by path; never loaded here")
    out = run_inner_pytest(tmp_path, tokenizers)
    assert "1 passed, 3 skipped" in out
    summary = out.split("optional assets: checks that did not run")[1]
    assert "the official tokenizers: 2 tests skipped, not found: fineweb_3_bpe.model, fineweb_5_bpe.model" in summary
    assert f"looked in: {tokenizers}, {optional_assets.REPO / 'data' / 'tokenizers'}, " in summary
    assert "to get it: python -m golf.data.fineweb --tokenizers-only" in summary
    assert "not about an asset" not in summary  # other skips stay in pytest's own list


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Both official repos, each listing its tokenizers in its manifest, served by a mocked hf_hub_download."""
    model = train_tokenizer([f"the quick brown fox number {i} jumps over the lazy dog" for i in range(50)], 300)
    files = {}
    for repo, vocab in (("willdepueoai/parameter-golf", 1024), ("kevclark/parameter-golf", 8192)):
        manifest = {"datasets": [], "tokenizers": [
            {"name": f"sp_bpe_{vocab}", "model_path": f"tokenizers/fineweb_{vocab}_bpe.model",
             "vocab_path": f"tokenizers/fineweb_{vocab}_bpe.vocab"},
            {"name": "byte260", "path": "tokenizers/fineweb_pure_byte_260.json"}]}  # not SentencePiece: left out
        files[(repo, "datasets/manifest.json")] = json.dumps(manifest).encode()
        files[(repo, f"datasets/tokenizers/fineweb_{vocab}_bpe.model")] = model
        files[(repo, f"datasets/tokenizers/fineweb_{vocab}_bpe.vocab")] = b"<pad>\t0\n"
    requests = []

    def hf_hub_download(repo_id, filename, repo_type):
        requests.append((repo_id, filename))
        blob = tmp_path / "hub_cache" / f"{len(requests)}"
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(files[(repo_id, filename)])
        return str(blob)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.delenv(fineweb.REPO_ID_ENV, raising=False)
    return requests


def test_tokenizers_only_fetches_every_official_tokenizer_where_the_tests_look(tmp_path, hub, monkeypatch, capsys):
    work = tmp_path / "checkout"
    work.mkdir()
    monkeypatch.chdir(work)
    assert fineweb.main(["--tokenizers-only"]) == 0
    written = work / fineweb.DEFAULT_OUT / "tokenizers"
    assert sorted(p.name for p in written.iterdir()) == [
        "fineweb_1024_bpe.model", "fineweb_1024_bpe.vocab", "fineweb_8192_bpe.model", "fineweb_8192_bpe.vocab"]
    assert not (work / fineweb.DEFAULT_OUT / "manifest.json").exists()  # a dataset download's manifest stays its own
    assert "tokenizers: 4 files downloaded, 0 already present" in capsys.readouterr().out
    # Run in the repository, the download lands in the first folder the tests search after $GOLF_TOKENIZERS.
    monkeypatch.delenv(optional_assets.TOKENIZERS_ENV, raising=False)
    monkeypatch.setattr(optional_assets, "REPO", work)
    assert optional_assets.official_tokenizer(8192) == written / "fineweb_8192_bpe.model"
    hub.clear()
    assert fineweb.main(["--tokenizers-only", "--variant", "sp8192"]) == 0
    assert hub == [("kevclark/parameter-golf", "datasets/manifest.json")]  # complete files are not fetched again
