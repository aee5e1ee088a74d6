"""Train/val disjointness, checked before training: no train shard is a val shard, and no document of the
val split appears in the train shards (a data-prep bug made them overlap once, PR #2127).

Documents are the token runs that start at BOS; each is hashed (blake2b of its uint16 ids). Every val
document is hashed; of each train shard the documents in its first `sample_tokens` tokens are compared
(every document of data that small, a fixed prefix of each FineWeb shard), so the check costs seconds.
"""

import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from golf.data.shards import find_shards, load_shard


def _documents(tokens: np.ndarray, bos_id: int) -> list[np.ndarray]:
    """The documents (BOS up to the next BOS) of `tokens`; one cut short by the end of a sample then matches
    no val document, which only makes the sample smaller."""
    starts = np.flatnonzero(tokens == bos_id)
    ends = [*starts[1:], tokens.size]
    return [tokens[s:e] for s, e in zip(starts, ends) if e > s + 1]


def _hash(doc: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(doc, dtype="<u2").tobytes(), digest_size=12).digest()


@dataclass
class Overlap:
    shared_files: list[str] = field(default_factory=list)  # train shards that are val shards
    files_with_val_docs: dict[str, int] = field(default_factory=dict)  # train shard -> val documents found in it
    val_documents: int = 0
    train_documents_checked: int = 0

    @property
    def disjoint(self) -> bool:
        return not self.shared_files and not self.files_with_val_docs

    def tainted(self) -> set[str]:
        """Train files that carry val data: reading any of them is reading val."""
        return set(self.shared_files) | set(self.files_with_val_docs)

    def summary(self) -> dict:
        return {"shared_files": self.shared_files, "files_with_val_documents": self.files_with_val_docs,
                "val_documents": self.val_documents, "train_documents_checked": self.train_documents_checked}


def check_overlap(train_pattern: str, val_pattern: str, bos_id: int, sample_tokens: int) -> Overlap:
    val_files = [os.path.realpath(p) for p in find_shards(val_pattern)]
    val_hashes = {_hash(doc) for path in val_files for doc in _documents(np.asarray(load_shard(path)), bos_id)}
    out = Overlap(val_documents=len(val_hashes))
    for path in find_shards(train_pattern):
        real = os.path.realpath(path)
        if any(real == v or os.path.samefile(real, v) for v in val_files):
            out.shared_files.append(real)
            continue
        docs = _documents(np.asarray(load_shard(path)[:sample_tokens]), bos_id)
        out.train_documents_checked += len(docs)
        found = sum(_hash(doc) in val_hashes for doc in docs)
        if found:
            out.files_with_val_docs[real] = found
    return out
