"""CaseOps data: the bijective case transform, `golf.data.build --transform caseops` with its per-token byte
sidecar (round trip on the demo corpus), the sidecar reader, and val/train disjointness of a CaseOps build."""

import json
import subprocess
import sys

import numpy as np
import pytest
import sentencepiece as spm

from golf.data import caseops
from golf.data.build import build_dataset
from golf.data.byte_sidecar import check_sidecar_alignment, load_byte_sidecar
from golf.data.caseops import ALLCAPS, CAPNEXT, ESC, TITLE, CaseOpsError, decode, encode, original_byte_weights
from golf.data.demo import demo_corpus
from golf.data.disjoint import check_overlap
from golf.data.loader import load_validation_tokens
from golf.data.shard_writer import write_shard
from golf.data.shards import find_shards, load_shard
from golf.errors import DataError

TRICKY = ["", "The NASA Launch", "iPhone OpenAI", "A", "I'm OK", "ABc aBC abC", "x" * 5 + "Y",
          f"literal {TITLE}{ALLCAPS}{CAPNEXT}{ESC} operators{ESC}", "Ünïcödé CAFÉ café 中文 😀", "MiXeD1Case2WORDS_x",
          "\n\n  indented\tTabs  ", "ALLCAPS-Title/lower.ABC"]


def test_caseops_golden_encodings():
    # The two examples of PR #1729's write-up, operators spelled out.
    assert encode("The NASA Launch") == f"{TITLE}the {ALLCAPS}nasa {TITLE}launch"
    assert encode("iPhone OpenAI") == f"i{CAPNEXT}phone {TITLE}open{CAPNEXT}a{CAPNEXT}i"
    assert encode("A") == f"{TITLE}a" and encode("lower") == "lower" and encode("OK") == f"{ALLCAPS}ok"
    assert encode(f"a{TITLE}b") == f"a{ESC}{TITLE}b"  # a literal operator is escaped
    # operator bytes weigh 0; an escaped operator is original text (3 bytes)
    assert original_byte_weights(f"{TITLE}ab").tolist() == [0, 0, 0, 1, 1]
    assert original_byte_weights(f"{ESC}{TITLE}").tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("text", TRICKY)
def test_caseops_is_a_bijection(text):
    encoded = encode(text)
    assert decode(encoded) == text
    assert encode(decode(encoded)) == encoded
    assert not any("A" <= ch <= "Z" for ch in encoded)  # the lexical stream is lowercase


@pytest.mark.parametrize("bad", [f"{TITLE}", f"{TITLE} x", f"a{TITLE}b", f"{ESC}a", "Capital", f"{CAPNEXT}1"])
def test_caseops_decode_refuses_what_the_encoder_never_writes(bad):
    with pytest.raises(CaseOpsError):
        decode(bad)


@pytest.mark.parametrize("text", TRICKY)
def test_original_byte_weights_count_the_original_text(text):
    encoded = encode(text)
    weights = original_byte_weights(encoded)
    assert weights.size == len(encoded.encode()) and int(weights.sum()) == len(text.encode())


@pytest.fixture(scope="module")
def demo_caseops(tmp_path_factory):
    """A slice of the demo corpus with its one duplicate: val doc 39 reappears as train doc 158."""
    documents, _ = demo_corpus()
    val, train = documents[30:46], documents[46:160]
    assert documents[39] in train
    out = tmp_path_factory.mktemp("caseops")
    clean = build_dataset(val + train, out / "clean", 512, len(val), name="demo", transform="caseops")
    return val, out, clean


def _documents(tokens: np.ndarray) -> list[slice]:
    starts = np.flatnonzero(tokens == 1).tolist()
    return [slice(s, e) for s, e in zip(starts, [*starts[1:], tokens.size], strict=True)]


def test_demo_round_trip_and_byte_sidecar(demo_caseops):
    val, out, clean = demo_caseops
    root = out / "clean"
    sp = spm.SentencePieceProcessor(model_file=str(root / "tokenizer.model"))
    ids = [sp.piece_to_id(op) for op in caseops.OPERATORS]
    assert [sp.id_to_piece(i) for i in ids] == list(caseops.OPERATORS) and not any(map(sp.is_byte, ids))
    tokens = np.concatenate([load_shard(p) for p in find_shards(str(root / "demo_val_[0-9]*.bin"))])
    sidecar = np.concatenate([load_shard(p) for p in find_shards(str(root / "demo_val_bytes_*.bin"))])
    assert sidecar.size == tokens.size == clean["num_tokens"]["val"]
    docs = _documents(tokens)
    assert len(docs) == len(val)
    for doc, original in zip(docs, val, strict=True):
        ids = tokens[doc][1:].tolist()
        assert decode(sp.decode(ids)) == original  # decode -> inverse transform -> original text
        assert int(sidecar[doc].sum()) == len(original.encode("utf-8"))  # BPB charges the original bytes
        assert sidecar[doc.start] == 0  # BOS
    operators = np.isin(tokens, [sp.piece_to_id(op) for op in caseops.OPERATORS])
    assert operators.any() and (sidecar[operators] == 0).all()
    assert clean["transform"] == "caseops" and clean["spec"]["normalization_rule_name"] == "identity"


def test_val_train_disjointness_by_document_hash(demo_caseops, tmp_path):
    _, out, clean = demo_caseops
    assert clean["dropped_train_duplicates_of_val"] == 1 and clean["num_docs"]["train"] == 113
    val, train = str(out / "clean" / "demo_val_[0-9]*.bin"), str(out / "clean" / "demo_train_*.bin")
    overlap = check_overlap(train, val, 1, 10**6)  # the byte sidecar is no val shard: the pattern skips it
    assert overlap.disjoint and overlap.val_documents == 16
    # A train shard carrying one val document (CaseOps tokens, operators included) is caught by its hash.
    tokens = np.concatenate([load_shard(p) for p in find_shards(val)])
    doc = tokens[_documents(tokens)[3]]
    write_shard(tmp_path / "demo_train_000000.bin", np.concatenate([load_shard(find_shards(train)[0]), doc]))
    leaky = check_overlap(str(tmp_path / "demo_train_*.bin"), val, 1, 10**7)
    assert leaky.files_with_val_docs == {str((tmp_path / "demo_train_000000.bin").resolve()): 1}


def test_sidecar_reader_aligns_with_the_validation_tokens(demo_caseops, tmp_path):
    _, out, _ = demo_caseops
    val, side = str(out / "clean" / "demo_val_[0-9]*.bin"), str(out / "clean" / "demo_val_bytes_*.bin")
    tokens = load_validation_tokens(val, 256)
    nbytes = load_byte_sidecar(side, val, 256)
    assert nbytes.shape == tokens.shape and nbytes.dtype == tokens.dtype
    assert (nbytes[tokens == 1] == 0).all() and int(nbytes.sum()) > tokens.numel()
    # A val pattern that also matches the sidecar files, or a sidecar of the wrong length, is refused.
    with pytest.raises(DataError, match="do not pair one-to-one"):
        check_sidecar_alignment(str(out / "clean" / "demo_val_*.bin"), side)
    write_shard(tmp_path / "x_val_000000.bin", [1, 5, 6])
    write_shard(tmp_path / "x_val_bytes_000000.bin", [0, 3])
    with pytest.raises(DataError, match="2 entries for the 3 tokens"):
        load_byte_sidecar(str(tmp_path / "x_val_bytes_*.bin"), str(tmp_path / "x_val_[0-9]*.bin"), 2)


def test_build_cli_with_caseops(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    docs = [f"Doc {i}: The QUICK brown Fox, iPhone {i % 7}." for i in range(30)]
    docs.append(docs[0])
    corpus.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    built = subprocess.run([sys.executable, "-m", "golf.data.build", "--input", str(corpus), "--out",
                            str(tmp_path / "ds"), "--vocab-size", "300", "--val-docs", "3", "--transform",
                            "caseops"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["transform"] == "caseops" and manifest["dropped_train_duplicates_of_val"] == 1
    assert (tmp_path / "ds" / "data_val_bytes_000000.bin").is_file()
