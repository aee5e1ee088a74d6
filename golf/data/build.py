"""Build a golf dataset (tokenizer, shards, manifest) from local text or JSONL files.

    python -m golf.data.build --input FILE [FILE ...] --out DIR --vocab-size 1024 \\
        [--val-docs N] [--jsonl-key text] [--doc-per-file] [--shard-tokens 100000000] [--name NAME] \\
        [--transform caseops]

Output, laid out like the official export:
    DIR/tokenizer.model               SentencePiece BPE trained with CANONICAL_SPM_SPEC
    DIR/{name}_val_000000.bin ...     the first --val-docs documents
    DIR/{name}_train_000000.bin ...   the remaining documents
    DIR/manifest.json                 counts, per-file sha256 and one dataset sha256

--transform caseops rewrites every document with golf.data.caseops before tokenizing (the tokenizer is
trained on the transformed text with the four operators as user-defined pieces and without normalization,
CASEOPS_SPM_SPEC, so decoding and the inverse transform give back the original text exactly) and writes
the per-token byte sidecar of the val shards, DIR/{name}_val_bytes_000000.bin ... (golf.data.byte_sidecar).

Each document is stored as [BOS] + ids with no EOS, as in the official shards. The dataset sha256
is the sha256 of the lines "<file name> <file sha256>\\n" in sorted name order, so it identifies
the exact bytes a run trained and evaluated on. The build happens in a hidden sibling directory
that is renamed into place at the end: an interrupted build never leaves a half dataset.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from golf.data import caseops
from golf.data.byte_sidecar import sidecar_path, write_sidecar
from golf.data.shard_writer import write_shard
from golf.errors import DataError

TOKENIZER_FILE = "tokenizer.model"
MANIFEST_FILE = "manifest.json"
MAX_VOCAB_SIZE = 2**16
ENCODE_BATCH_DOCS = 256
TRANSFORMS = ("none", "caseops")
# Trainer settings of the official FineWeb tokenizers (openai/parameter-golf
# data/download_hf_docs_and_tokenize.py), checked field by field against the official .model
# files by the tests. Two deliberate notes:
# - byte_fallback: the sp8192 model (kevclark/parameter-golf) and the current exporter use True;
#   the older sp1024/2048/4096 models were trained without it and map unseen characters to <unk>.
# - num_threads, input_sentence_size and max_sentence_length are the official values spelled out,
#   because they are stored in the .model file: fixing them keeps builds byte-identical across
#   machines. With input_sentence_size=0 every sentence is used (no random sampling), and the BPE
#   trainer's merges do not depend on the thread count, so training is deterministic.
CANONICAL_SPM_SPEC: dict = {
    "model_type": "bpe",
    "character_coverage": 0.999,
    "byte_fallback": True,
    "split_digits": True,
    "normalization_rule_name": "nmt_nfkc",
    "add_dummy_prefix": False,
    "hard_vocab_limit": False,
    "pad_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "unk_id": 3,
    "num_threads": 16,
    "input_sentence_size": 0,
    "max_sentence_length": 4192,
}
# No normalization (nmt_nfkc would fold characters and collapse whitespace, so the text could not come back)
# and the four CaseOps operators as pieces of their own. The records' published CaseOps tokenizer keeps
# nmt_nfkc: its token stream is lossless only up to that normalization, its sidecar counts original bytes.
CASEOPS_SPM_SPEC = {**CANONICAL_SPM_SPEC, "normalization_rule_name": "identity", "remove_extra_whitespaces": False,
                    "user_defined_symbols": list(caseops.OPERATORS)}


def read_documents(
    paths: Sequence[str | Path], jsonl_key: str = "text", doc_per_file: bool = False
) -> list[str]:
    """Documents from .jsonl files (one per line, field `jsonl_key`) and text files (one per
    blank-line-separated block, or one per file with `doc_per_file`)."""
    if not paths:
        raise DataError("no input files given; pass --input FILE [FILE ...] with .txt or .jsonl files")
    documents: list[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"input file {path} not found; check the --input paths")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                f"input file {path} is not valid UTF-8 ({exc}); convert it to UTF-8 first"
            ) from exc
        if path.suffix == ".jsonl":
            documents.extend(_jsonl_documents(path, text, jsonl_key))
        elif doc_per_file:
            documents.append(text)
        else:
            documents.extend(block for block in re.split(r"\n\s*\n", text) if block.strip())
    return documents


def _jsonl_documents(path: Path, text: str, key: str) -> Iterator[str]:
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{line_number} is not valid JSON ({exc}); fix or remove that line"
            ) from exc
        if not isinstance(record, dict) or not isinstance(record.get(key), str):
            raise DataError(
                f"{path}:{line_number} has no string field {key!r}; set --jsonl-key to the text field"
            )
        yield record[key]


def _training_lines(documents: Sequence[str]) -> Iterator[str]:
    # SentencePiece silently drops sentences longer than max_sentence_length, so whole documents
    # would mostly be ignored; lines keep nearly all text in the tokenizer's training set.
    for document in documents:
        for line in document.splitlines():
            if line.strip():
                yield line


def train_tokenizer(documents: Sequence[str], vocab_size: int, spec: dict = CANONICAL_SPM_SPEC) -> bytes:
    """Train a tokenizer (`spec`, by default CANONICAL_SPM_SPEC) with exactly `vocab_size` pieces; return the
    model bytes."""
    if not 0 < vocab_size <= MAX_VOCAB_SIZE:
        raise DataError(
            f"--vocab-size {vocab_size} must be in [1, {MAX_VOCAB_SIZE}] so ids fit uint16 shards"
        )
    if next(_training_lines(documents), None) is None:
        raise DataError("the corpus is empty (no non-blank text); check the --input files and --jsonl-key")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=_training_lines(documents),
            model_writer=model,
            vocab_size=vocab_size,
            minloglevel=2,
            **spec,
        )
    except RuntimeError as exc:
        raise DataError(
            f"SentencePiece cannot train a {vocab_size}-piece tokenizer on this corpus of "
            f"{len(documents)} documents ({' '.join(str(exc).split())}); pick a --vocab-size that fits "
            f"this corpus or add more text"
        ) from exc
    trained = spm.SentencePieceProcessor(model_proto=model.getvalue()).vocab_size()
    if trained != vocab_size:
        # hard_vocab_limit=False (the official setting) lets training stop early on a small corpus.
        raise DataError(
            f"the corpus only supports {trained} tokenizer pieces, fewer than --vocab-size {vocab_size}; "
            f"lower --vocab-size to at most {trained} or add more text"
        )
    return model.getvalue()


class _ShardWriter:
    """Appends token arrays to `{name}_{split}_NNNNNN.bin` shards of at most `shard_tokens` tokens."""

    def __init__(self, out_dir: Path, name: str, split: str, shard_tokens: int):
        self.out_dir, self.name, self.split, self.shard_tokens = out_dir, name, split, shard_tokens
        self.pending: list[np.ndarray] = []
        self.pending_tokens = 0
        self.paths: list[Path] = []
        self.num_tokens = 0

    def add(self, tokens: np.ndarray) -> None:
        self.pending.append(tokens)
        self.pending_tokens += tokens.size
        while self.pending_tokens >= self.shard_tokens:
            joined = np.concatenate(self.pending)
            self._write(joined[: self.shard_tokens])
            self.pending = [joined[self.shard_tokens :]]
            self.pending_tokens = self.pending[0].size

    def close(self) -> None:
        if self.pending_tokens:
            self._write(np.concatenate(self.pending))
        self.pending, self.pending_tokens = [], 0

    def _write(self, tokens: np.ndarray) -> None:
        path = self.out_dir / f"{self.name}_{self.split}_{len(self.paths):06d}.bin"
        write_shard(path, tokens)
        self.paths.append(path)
        self.num_tokens += tokens.size


def _write_split(sp: spm.SentencePieceProcessor, documents: Sequence[str], writer: _ShardWriter) -> None:
    bos = np.array([sp.bos_id()], dtype=np.uint16)
    for start in range(0, len(documents), ENCODE_BATCH_DOCS):
        for ids in sp.encode(list(documents[start : start + ENCODE_BATCH_DOCS])):
            writer.add(np.concatenate([bos, np.asarray(ids, dtype=np.uint16)]))
    writer.close()


def token_original_bytes(sp: spm.SentencePieceProcessor, transformed: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, original bytes per id) of a CaseOps-transformed document: each piece's byte span of the input
    (byte-fallback pieces of one character: the span sits on the last, the others are empty) summed over
    golf.data.caseops.original_byte_weights."""
    pieces = sp.encode(transformed, out_type="proto").pieces
    ids = np.fromiter((p.id for p in pieces), dtype=np.uint16, count=len(pieces))
    cumulative = np.concatenate([[0], np.cumsum(caseops.original_byte_weights(transformed), dtype=np.int64)])
    begins = np.fromiter((p.begin for p in pieces), dtype=np.int64, count=len(pieces))
    ends = np.fromiter((p.end for p in pieces), dtype=np.int64, count=len(pieces))
    return ids, cumulative[ends] - cumulative[begins]


def _write_caseops_val(sp: spm.SentencePieceProcessor, documents: Sequence[str], writer: _ShardWriter,
                       sidecar: _ShardWriter) -> None:
    """Val shards and their byte sidecar: the same documents cut into shards at the same token counts."""
    zero = np.zeros(1, dtype=np.uint16)
    bos = np.array([sp.bos_id()], dtype=np.uint16)
    for document in documents:
        ids, nbytes = token_original_bytes(sp, document)
        writer.add(np.concatenate([bos, ids]))
        sidecar.add(np.concatenate([zero, nbytes.astype(np.int64)]))
    writer.close()
    sidecar.close()


class _SidecarWriter(_ShardWriter):
    """Byte counts into `{name}_val_bytes_NNNNNN.bin`, next to the val shard of the same index."""

    def _write(self, values: np.ndarray) -> None:
        path = sidecar_path(self.out_dir / f"{self.name}_val_{len(self.paths):06d}.bin")
        write_sidecar(path, values)
        self.paths.append(path)
        self.num_tokens += values.size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_sha256(file_hashes: dict[str, str]) -> str:
    lines = "".join(f"{name} {file_hashes[name]}\n" for name in sorted(file_hashes))
    return hashlib.sha256(lines.encode()).hexdigest()


def build_dataset(
    documents: Iterable[str],
    out_dir: str | Path,
    vocab_size: int,
    val_docs: int,
    name: str = "data",
    shard_tokens: int = 10**8,
    transform: str = "none",
) -> dict:
    """Train the tokenizer, write val/train shards (and with transform=caseops the val byte sidecar) and the
    manifest into `out_dir`; return the manifest."""
    documents = list(documents)
    out_dir = Path(out_dir)
    if not documents:
        raise DataError("the corpus has no documents; check the --input files and --jsonl-key")
    if not 1 <= val_docs < len(documents):
        raise DataError(
            f"--val-docs {val_docs} must be at least 1 and leave training documents, but the corpus has "
            f"{len(documents)} documents; pick --val-docs between 1 and {len(documents) - 1}"
        )
    if shard_tokens < 1:
        raise DataError(f"--shard-tokens {shard_tokens} must be positive; the official export uses 100000000")
    if transform not in TRANSFORMS:
        raise DataError(f"--transform {transform} is unknown; choose one of {', '.join(TRANSFORMS)}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir} already exists and is not empty; delete it or choose another --out")

    # A training document identical to a validation document would put val text into training (the demo
    # corpus has such duplicates: tiny identical stdlib files); drop it, and say how many went.
    val_texts = set(documents[:val_docs])
    train_docs = [doc for doc in documents[val_docs:] if doc not in val_texts]
    dropped = len(documents) - val_docs - len(train_docs)
    val_split = documents[:val_docs]
    spec = CANONICAL_SPM_SPEC
    if transform == "caseops":
        val_split, train_docs = [caseops.encode(d) for d in val_split], [caseops.encode(d) for d in train_docs]
        spec = CASEOPS_SPM_SPEC
    model_proto = train_tokenizer(val_split + train_docs, vocab_size, spec)
    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.building-"))
    try:
        staging.chmod(0o755)  # mkdtemp makes the directory private; the dataset is meant to be shared
        (staging / TOKENIZER_FILE).write_bytes(model_proto)
        val = _ShardWriter(staging, name, "val", shard_tokens)
        train = _ShardWriter(staging, name, "train", shard_tokens)
        sidecar = _SidecarWriter(staging, name, "val", shard_tokens)
        if transform == "caseops":
            _write_caseops_val(sp, val_split, val, sidecar)
        else:
            _write_split(sp, val_split, val)
        _write_split(sp, train_docs, train)
        file_hashes = {p.name: _sha256(p) for p in [staging / TOKENIZER_FILE, *val.paths, *sidecar.paths,
                                                     *train.paths]}
        manifest = {
            "name": name,
            "vocab_size": vocab_size,
            "num_docs": {"train": len(train_docs), "val": val_docs},
            "dropped_train_duplicates_of_val": dropped,
            "num_tokens": {"train": train.num_tokens, "val": val.num_tokens},
            "files": file_hashes,
            "sha256": dataset_sha256(file_hashes),
            "spec": spec,
            "transform": transform,
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m golf.data.build", description=__doc__.split("\n")[0])
    parser.add_argument("--input", nargs="+", required=True, help=".txt or .jsonl files")
    parser.add_argument("--out", required=True, help="output dataset directory (must not exist yet)")
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--val-docs", type=int, help="documents for the val split (default: 5%%, at least 1)")
    parser.add_argument("--jsonl-key", default="text", help="text field of each .jsonl record")
    parser.add_argument("--doc-per-file", action="store_true", help="each .txt file is one document")
    parser.add_argument("--shard-tokens", type=int, default=10**8, help="maximum tokens per shard")
    parser.add_argument("--name", default="data", help="shard file prefix: NAME_train_000000.bin")
    parser.add_argument("--transform", choices=TRANSFORMS, default="none",
                        help="caseops: lossless case operators + val byte sidecar (PR #1729)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        documents = read_documents(args.input, args.jsonl_key, args.doc_per_file)
        val_docs = args.val_docs if args.val_docs is not None else max(1, len(documents) // 20)
        manifest = build_dataset(documents, args.out, args.vocab_size, val_docs, args.name, args.shard_tokens,
                                 args.transform)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    docs, tokens = manifest["num_docs"], manifest["num_tokens"]
    print(
        f"built {args.out}: {docs['train']} train docs / {tokens['train']} tokens, "
        f"{docs['val']} val docs / {tokens['val']} tokens, "
        f"vocab {manifest['vocab_size']}, sha256 {manifest['sha256']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
