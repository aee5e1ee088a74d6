"""Val/train disjointness by document hash: no validation document may also be a training document.

A document is a BOS token and the tokens up to the next BOS (the shard writers let documents run across
shard boundaries, so shards are read as one stream). Two documents are the same when their token ids are,
which under one tokenizer means the same text. The CaseOps exports showed why this is checked: a
preparation script whose default val split was smaller than the published one put 40,000 of the 50,000
val documents into training (openai/parameter-golf issue #2127).

    python -m golf.data.disjoint --train 'data/x_train_*.bin' --val 'data/x_val_[0-9]*.bin'
"""

import argparse
import hashlib
import sys
from collections.abc import Iterator

import numpy as np

from golf.data.shards import find_shards, load_shard
from golf.errors import DataError


def documents(pattern: str, bos_id: int = 1) -> Iterator[np.ndarray]:
    """The documents of the shards matching `pattern`, in order, each starting with its BOS."""
    carry = np.empty(0, dtype=np.uint16)
    for path in find_shards(pattern):
        tokens = np.concatenate([carry, np.asarray(load_shard(path))])
        starts = np.flatnonzero(tokens == bos_id)
        bounds = [0, *starts[starts > 0].tolist()]
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            yield tokens[start:end]
        carry = tokens[bounds[-1]:]
    if carry.size:
        yield carry


def document_digest(tokens: np.ndarray) -> bytes:
    return hashlib.blake2b(tokens.astype("<u2").tobytes(), digest_size=16).digest()


def check_disjoint(train_pattern: str, val_pattern: str, bos_id: int = 1) -> int:
    """Raise a DataError if a val document also occurs in training; return the number of val documents."""
    val = {document_digest(doc) for doc in documents(val_pattern, bos_id)}
    shared = sum(document_digest(doc) in val for doc in documents(train_pattern, bos_id))
    if shared:
        raise DataError(f"{shared} training documents of {train_pattern} are also val documents of {val_pattern}; "
                        f"the split leaks val text into training: rebuild with python -m golf.data.build "
                        f"--drop-val-duplicates, or use the published val/train split")
    return len(val)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m golf.data.disjoint", description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True, help="glob of the train shards")
    parser.add_argument("--val", required=True, help="glob of the val shards (not their byte sidecars)")
    parser.add_argument("--bos-id", type=int, default=1)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        count = check_disjoint(args.train, args.val, args.bos_id)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"disjoint: none of the {count} distinct val documents occurs in {args.train}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
