"""SentencePiece tokenizer loading and its consistency checks against the model and the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sentencepiece as spm

from golf.errors import DataError


def load_tokenizer(path: str | Path) -> spm.SentencePieceProcessor:
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"tokenizer {path} not found", fix="download it with python -m golf.data.fineweb, build one with "
            "python -m golf.data.build, or fix data.tokenizer"
        )
    try:
        return spm.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as exc:
        raise DataError(
            f"tokenizer {path} is not a loadable SentencePiece model ({exc})", fix="re-download it with "
            "python -m golf.data.fineweb or rebuild it with python -m golf.data.build"
        ) from exc


def check_vocab(sp: spm.SentencePieceProcessor, vocab_size: int, tokenizer_path: str | Path) -> None:
    """The model's embedding size must equal the tokenizer's piece count."""
    pieces = sp.vocab_size()
    if pieces != vocab_size:
        raise DataError(
            f"arch.vocab_size={vocab_size} does not match tokenizer {tokenizer_path} with {pieces} "
            f"pieces", fix=f"set arch.vocab_size={pieces} or pick the matching data=... option"
        )


def check_bos(sp: spm.SentencePieceProcessor, bos_id: int, bos_mask: bool, tokenizer_path: str | Path) -> None:
    """The document start the model masks at (arch.bos_id, SmearGate / BigramHash) must be the tokenizer's BOS."""
    if not bos_mask or sp.bos_id() == bos_id:
        return
    fix = f"set arch.bos_id={sp.bos_id()}" if sp.bos_id() >= 0 else "it has none: set arch.bos_mask=false"
    raise DataError(f"arch.bos_id={bos_id} is not the BOS of tokenizer {tokenizer_path} (id {sp.bos_id()}), so "
                    f"document boundaries would be masked at the wrong token", fix=fix)


def check_tokens_in_vocab(tokens: np.ndarray, vocab_size: int, source: str) -> None:
    """Every token id must index the embedding; ids past it mean shards from another tokenizer."""
    if tokens.size == 0:
        return
    max_id = int(tokens.max())
    if max_id >= vocab_size:
        raise DataError(
            f"{source} contains token id {max_id}, but arch.vocab_size={vocab_size}; the shards were made "
            f"with a larger tokenizer — pick the data=... option that matches them or raise arch.vocab_size"
        )
