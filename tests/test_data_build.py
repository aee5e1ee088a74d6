"""golf.data.build: tokenizer training, shard export, manifest, CLI and failure modes."""

import hashlib
import json
import random
import unicodedata

import numpy as np
import pytest
import sentencepiece as spm

from golf.data import build
from golf.data.build import CANONICAL_SPM_SPEC, build_dataset, dataset_sha256, main, read_documents
from golf.data.shards import find_shards, load_shard, read_shard_header
from golf.errors import DataError

WORDS = "alpha beta gamma delta river stone cloud light night tree über café naïve".split()


def make_corpus(num_docs: int = 40, seed: int = 0) -> list[str]:
    """Multi-line documents with digits, accents and an NFKC-changing ligature."""
    rng = random.Random(seed)
    documents = []
    for i in range(num_docs):
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(rng.randint(1, 6))
        ]
        documents.append("\n".join(lines) + f"\n  ﬁnal line {i}, value {rng.randint(0, 99999)}.\n")
    return documents


def split_documents(tokens: np.ndarray, bos: int = 1) -> list[np.ndarray]:
    starts = np.flatnonzero(tokens == bos)
    assert starts.size and starts[0] == 0, "every document must start with BOS"
    return [tokens[s + 1 : e] for s, e in zip(starts, [*starts[1:], tokens.size], strict=True)]


def normalized(text: str) -> str:
    # What nmt_nfkc with remove_extra_whitespaces keeps of a document.
    return " ".join(unicodedata.normalize("NFKC", text).split())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    documents = make_corpus()
    out = tmp_path_factory.mktemp("build") / "ds"
    manifest = build_dataset(documents, out, vocab_size=300, val_docs=4, name="toy", shard_tokens=700)
    return documents, out, manifest


def test_build_writes_documents_as_bos_plus_ids(built):
    documents, out, manifest = built
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    assert sp.vocab_size() == 300
    val_tokens = np.concatenate([load_shard(p) for p in find_shards(str(out / "toy_val_*.bin"))])
    train_shards = find_shards(str(out / "toy_train_*.bin"))
    train_tokens = np.concatenate([load_shard(p) for p in train_shards])
    assert len(train_shards) > 1 and all(read_shard_header(p) <= 700 for p in train_shards)
    assert int(val_tokens.max()) < 300 and int(train_tokens.max()) < 300
    assert not np.any(np.isin(val_tokens, [0, 2, 3]))  # no pad, EOS or unk
    val_docs, train_docs = split_documents(val_tokens), split_documents(train_tokens)
    assert [sp.decode(d.tolist()) for d in val_docs] == [normalized(t) for t in documents[:4]]
    assert [sp.decode(d.tolist()) for d in train_docs] == [normalized(t) for t in documents[4:]]
    assert [d.tolist() for d in val_docs] == sp.encode(documents[:4])


def test_manifest_hashes_and_counts_match_the_files(built):
    documents, out, manifest = built
    assert json.loads((out / "manifest.json").read_text()) == manifest
    on_disk = sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert sorted(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert manifest["sha256"] == dataset_sha256(manifest["files"])
    assert manifest["name"] == "toy" and manifest["vocab_size"] == 300
    assert manifest["num_docs"] == {"train": len(documents) - 4, "val": 4}
    for split in ("train", "val"):
        shards = find_shards(str(out / f"toy_{split}_*.bin"))
        assert manifest["num_tokens"][split] == sum(read_shard_header(p) for p in shards)
    assert manifest["spec"] == CANONICAL_SPM_SPEC
    assert [p.name for p in out.parent.iterdir()] == ["ds"]  # staging directory renamed away


def test_dataset_sha256_depends_on_every_file():
    base = {"a.bin": "11", "tokenizer.model": "22"}
    assert dataset_sha256(base) == dataset_sha256(dict(reversed(list(base.items()))))
    assert dataset_sha256(base) != dataset_sha256({**base, "a.bin": "12"})


def test_build_error_cases(tmp_path):
    documents = make_corpus()
    with pytest.raises(
        DataError, match=r"--val-docs 40 must be at least 1 and leave training documents.*between 1 and 39"
    ):
        build_dataset(documents, tmp_path / "a", 300, val_docs=40)
    with pytest.raises(DataError, match="no documents"):
        build_dataset([], tmp_path / "b", 300, val_docs=1)
    with pytest.raises(DataError, match="corpus is empty"):
        build_dataset(["", "  \n\n "], tmp_path / "c", 300, val_docs=1)
    with pytest.raises(
        DataError,
        match=r"only supports \d+ tokenizer pieces, fewer than --vocab-size 5000; lower --vocab-size",
    ):
        build_dataset(documents, tmp_path / "d", 5000, val_docs=2)
    with pytest.raises(
        DataError, match=r"cannot train a 100-piece tokenizer .*required_chars.*pick a --vocab-size"
    ):
        build_dataset(documents, tmp_path / "e", 100, val_docs=2)
    with pytest.raises(DataError, match=r"must be in \[1, 65536\]"):
        build_dataset(documents, tmp_path / "f", 70000, val_docs=2)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(DataError, match="already exists and is not empty"):
        build_dataset(documents, tmp_path / "full", 300, val_docs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_write(path, tokens):
        calls.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "write_shard", failing_write)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(make_corpus(), tmp_path / "ds", 300, val_docs=2)
    assert calls and list(tmp_path.iterdir()) == []


def test_read_documents_from_txt_and_jsonl(tmp_path):
    txt = tmp_path / "a.txt"
    txt.write_text("first doc\nstill first\n\n  \nsecond doc\n\n\n\nthird\n")
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(
        json.dumps({"text": "from json", "id": 1}) + "\n\n" + json.dumps({"text": "more"}) + "\n"
    )
    assert read_documents([txt, jsonl]) == [
        "first doc\nstill first",
        "second doc",
        "third\n",
        "from json",
        "more",
    ]
    assert read_documents([txt], doc_per_file=True) == [txt.read_text()]
    with pytest.raises(DataError, match=r"b\.jsonl:1 has no string field 'body'; set --jsonl-key"):
        read_documents([jsonl], jsonl_key="body")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1 is not valid JSON"):
        read_documents([tmp_path / "bad.jsonl"])
    with pytest.raises(DataError, match=r"missing\.txt not found"):
        read_documents([tmp_path / "missing.txt"])
    with pytest.raises(DataError, match="no input files"):
        read_documents([])


def test_cli_builds_dataset(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"body": doc}) + "\n" for doc in make_corpus(30, seed=1)))
    out = tmp_path / "out"
    code = main(
        [
            "--input",
            str(corpus),
            "--out",
            str(out),
            "--vocab-size",
            "300",
            "--jsonl-key",
            "body",
            "--name",
            "mine",
        ]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_docs"] == {"train": 29, "val": 1}  # default: 5% of documents, at least 1
    assert (out / "mine_train_000000.bin").is_file() and (out / "mine_val_000000.bin").is_file()
    assert manifest["sha256"] in capsys.readouterr().out


def test_cli_reports_errors_on_one_line(tmp_path, capsys):
    assert main(["--input", str(tmp_path / "none.txt"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "none.txt not found" in err and err.count("\n") == 1
