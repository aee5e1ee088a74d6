"""golf.data.fineweb: the manifest-driven download, run against a local directory laid out like the hub."""

import json
import os

import huggingface_hub
import pytest

from golf.data import fineweb
from golf.data.build import train_tokenizer
from golf.data.fineweb import download_fineweb, hub_fetch, place_file
from golf.data.shard_writer import write_shard
from golf.data.shards import read_shard_header
from golf.errors import DataError

REPO = "willdepueoai/parameter-golf"
SHARD_TOKENS = {"val": [50], "train": [40, 30, 20]}


@pytest.fixture(scope="module")
def tokenizer_model() -> bytes:
    return train_tokenizer(
        [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(50)], 300
    )


def make_hub_repo(
    root, tokenizer_model, repo=REPO, dataset="fineweb10B_sp1024", tokenizer_name="sp_bpe_1024"
):
    """A dataset repo with the official layout: everything under datasets/."""
    base = root / repo / "datasets"
    manifest = {
        "datasets": [
            {
                "name": dataset,
                "tokenizer_name": tokenizer_name,
                "path": f"datasets/{dataset}",
                "stats": {"files_train": len(SHARD_TOKENS["train"]), "files_val": len(SHARD_TOKENS["val"])},
            }
        ],
        "tokenizers": [
            {
                "name": tokenizer_name,
                "kind": "sentencepiece_bpe",
                "model_path": "tokenizers/tok.model",
                "vocab_path": "tokenizers/tok.vocab",
            }
        ],
    }
    (base / "tokenizers").mkdir(parents=True)
    (base / "manifest.json").write_text(json.dumps(manifest))
    (base / "tokenizers" / "tok.model").write_bytes(tokenizer_model)
    (base / "tokenizers" / "tok.vocab").write_text("<pad>\t0\n")
    for split, sizes in SHARD_TOKENS.items():
        for i, size in enumerate(sizes):
            write_shard(base / "datasets" / dataset / f"fineweb_{split}_{i:06d}.bin", range(size))
    return base


class FakeHub:
    """Serves files from a local directory; records every request."""

    def __init__(self, root):
        self.root = root
        self.requests = []

    def __call__(self, repo_id, remote_path, local_path):
        self.requests.append((repo_id, remote_path))
        place_file(self.root / repo_id / remote_path, local_path)


@pytest.fixture
def hub(tmp_path, tokenizer_model, monkeypatch):
    monkeypatch.delenv(fineweb.REPO_ID_ENV, raising=False)
    make_hub_repo(tmp_path / "hub", tokenizer_model)
    return FakeHub(tmp_path / "hub")


def test_download_follows_manifest(tmp_path, hub):
    out = tmp_path / "data"
    summary = download_fineweb("sp1024", 2, out, fetch=hub)
    dataset_dir = out / "datasets" / "fineweb10B_sp1024"
    assert sorted(p.name for p in dataset_dir.iterdir()) == [
        "fineweb_train_000000.bin",
        "fineweb_train_000001.bin",
        "fineweb_val_000000.bin",
    ]
    assert (out / "tokenizers" / "tok.model").is_file() and (out / "manifest.json").is_file()
    assert {repo for repo, _ in hub.requests} == {REPO}
    assert [path for _, path in hub.requests] == [
        "datasets/manifest.json",
        "datasets/tokenizers/tok.model",
        "datasets/tokenizers/tok.vocab",
        "datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin",
        "datasets/datasets/fineweb10B_sp1024/fineweb_train_000000.bin",
        "datasets/datasets/fineweb10B_sp1024/fineweb_train_000001.bin",
    ]
    assert summary["train_shards"] == 2 and summary["val_shards"] == 1
    assert summary["train_tokens"] == 70 and summary["val_tokens"] == 50
    assert summary["train_pattern"] == str(dataset_dir / "fineweb_train_*.bin")
    assert summary["tokenizer_path"] == str(out / "tokenizers" / "tok.model")
    assert len(summary["downloaded"]) == 5 and summary["skipped"] == []


def test_rerun_skips_complete_files_and_refetches_corrupt_ones(tmp_path, hub):
    out = tmp_path / "data"
    download_fineweb("sp1024", 2, out, fetch=hub)
    broken = out / "datasets" / "fineweb10B_sp1024" / "fineweb_train_000001.bin"
    truncated = broken.read_bytes()[:-2]
    broken.unlink()  # it is a hard link to the hub's copy; replace it rather than edit it in place
    broken.write_bytes(truncated)
    hub.requests.clear()
    summary = download_fineweb("sp1024", 3, out, fetch=hub)
    assert [path.rsplit("/", 1)[-1] for _, path in hub.requests] == [
        "manifest.json",
        "fineweb_train_000001.bin",
        "fineweb_train_000002.bin",
    ]
    assert read_shard_header(broken) == 30
    assert summary["train_tokens"] == 90 and len(summary["skipped"]) == 4


def test_repo_id_from_env_and_argument(tmp_path, tokenizer_model, hub, monkeypatch):
    make_hub_repo(hub.root, tokenizer_model, repo="mirror/pg")
    monkeypatch.setenv(fineweb.REPO_ID_ENV, "mirror/pg")
    assert download_fineweb("sp1024", 0, tmp_path / "a", fetch=hub)["repo_id"] == "mirror/pg"
    assert download_fineweb("sp1024", 0, tmp_path / "b", repo_id=REPO, fetch=hub)["repo_id"] == REPO
    monkeypatch.delenv(fineweb.REPO_ID_ENV)
    assert fineweb.resolve_repo_id("sp8192") == "kevclark/parameter-golf"


def test_manifest_problems_are_data_errors(tmp_path, hub):
    with pytest.raises(
        DataError, match=r"has only 3 train shards on willdepueoai/parameter-golf; lower --train-shards"
    ):
        download_fineweb("sp1024", 4, tmp_path / "a", fetch=hub)
    with pytest.raises(
        DataError, match=r"lists no dataset 'fineweb10B_sp8192' \(it has: fineweb10B_sp1024\); pass the repo"
    ):
        download_fineweb("sp8192", 1, tmp_path / "b", repo_id=REPO, fetch=hub)
    manifest_path = hub.root / REPO / "datasets" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tokenizers"][0]["model_path"] = "../../escape.model"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="unsafe file path"):
        download_fineweb("sp1024", 1, tmp_path / "c", fetch=hub)
    assert not (tmp_path / "escape.model").exists()
    manifest_path.write_text("[]")
    with pytest.raises(DataError, match="is not a dataset manifest"):
        download_fineweb("sp1024", 1, tmp_path / "d", fetch=hub)


def test_missing_remote_file_and_corrupt_shard(tmp_path, hub):
    remote_dir = hub.root / REPO / "datasets" / "datasets" / "fineweb10B_sp1024"
    (remote_dir / "fineweb_train_000001.bin").unlink()
    with pytest.raises(
        DataError,
        match=r"could not download datasets/datasets/fineweb10B_sp1024/fineweb_train_000001\.bin .*--repo-id",
    ):
        download_fineweb("sp1024", 2, tmp_path / "a", fetch=hub)
    assert (
        read_shard_header(tmp_path / "a" / "datasets" / "fineweb10B_sp1024" / "fineweb_train_000000.bin")
        == 40
    )
    (remote_dir / "fineweb_val_000000.bin").write_bytes(b"\x00" * 1030)
    with pytest.raises(DataError, match=r"fineweb_val_000000\.bin: bad magic 0"):
        download_fineweb("sp1024", 0, tmp_path / "b", fetch=hub)


def test_hub_fetch_materializes_the_cached_blob(tmp_path, monkeypatch):
    blob = tmp_path / "cache" / "blobs" / "abc"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"payload")
    snapshot = tmp_path / "cache" / "snapshot" / "manifest.json"
    snapshot.parent.mkdir()
    snapshot.symlink_to(blob)
    seen = {}

    def fake_download(repo_id, filename, repo_type):
        seen.update(repo_id=repo_id, filename=filename, repo_type=repo_type)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    local = tmp_path / "out" / "manifest.json"
    hub_fetch(REPO, "datasets/manifest.json", local)
    assert seen == {"repo_id": REPO, "filename": "datasets/manifest.json", "repo_type": "dataset"}
    assert local.read_bytes() == b"payload" and not local.is_symlink()
    assert os.listdir(local.parent) == ["manifest.json"]


def test_cli_turns_network_failure_into_one_line_error(tmp_path, monkeypatch, capsys):
    def offline(**kwargs):
        raise OSError("Name or service not known\nretry later")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.delenv(fineweb.REPO_ID_ENV, raising=False)
    assert fineweb.main(["--variant", "sp1024", "--train-shards", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "could not download datasets/manifest.json" in err
        and "MATCHED_FINEWEB_REPO_ID" in err
    )


CASEOPS_REPO, CASEOPS = "romeerp/parameter-golf-caseops-v1", "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"


def _caseops_repo(hub, tokenizer_model, with_sidecar: bool = True):
    base = make_hub_repo(hub.root, tokenizer_model, repo=CASEOPS_REPO, dataset=CASEOPS, tokenizer_name="caseops")
    manifest = json.loads((base / "manifest.json").read_text())
    if with_sidecar:
        manifest["datasets"][0]["val_bytes_glob"] = f"datasets/{CASEOPS}/fineweb_val_bytes_*.bin"
        write_shard(base / "datasets" / CASEOPS / "fineweb_val_bytes_000000.bin", [2] * SHARD_TOKENS["val"][0])
    (base / "manifest.json").write_text(json.dumps(manifest))
    return base


def test_caseops_variant_fetches_the_byte_sidecar(tmp_path, tokenizer_model, hub):
    _caseops_repo(hub, tokenizer_model)
    summary = download_fineweb("sp8192_caseops", 1, tmp_path / "data", fetch=hub)
    dataset_dir = tmp_path / "data" / "datasets" / CASEOPS
    assert {repo for repo, _ in hub.requests} == {CASEOPS_REPO}
    assert f"datasets/datasets/{CASEOPS}/fineweb_val_bytes_000000.bin" in [p for _, p in hub.requests]
    assert summary["val_bytes_pattern"] == str(dataset_dir / "fineweb_val_bytes_*.bin")
    assert summary["val_pattern"] == str(dataset_dir / "fineweb_val_[0-9]*.bin")
    assert summary["val_shards"] == 1 and summary["val_tokens"] == 50  # the sidecar is not a val shard


def test_caseops_export_without_a_sidecar_is_refused(tmp_path, tokenizer_model, hub):
    _caseops_repo(hub, tokenizer_model, with_sidecar=False)
    with pytest.raises(DataError, match="has no val_bytes_glob"):
        download_fineweb("sp8192_caseops", 1, tmp_path / "data", fetch=hub)
