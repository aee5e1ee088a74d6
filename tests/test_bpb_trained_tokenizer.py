"""Byte accounting with a tokenizer golf trains here with the canonical spec (BPE, byte fallback, nmt_nfkc,
no dummy prefix), so every clone checks the lookup tables; tests/test_bpb.py repeats the checks on the
official tokenizers when they are present.

The ground truth is the text itself: a document's bytes are len(sp.decode(ids).encode("utf-8")), and the
scores are recomputed here from the model's raw logits, with the sliding windows written out from their
definition rather than taken from golf.
"""

import math

import pytest
import sentencepiece as spm
import torch
from test_bpb import BOS, DOCUMENTS, _generated_documents, _lut_total, _tiny_model

from golf.data.build import train_tokenizer
from golf.eval.bpb import SPACE_MARK, build_byte_tables
from golf.eval.context import EvalContext
from golf.eval.full import evaluate_full
from golf.eval.sliding import evaluate_sliding
from golf.eval.val_stream import ValStream

TOKENIZER_VOCAB = 768  # 256 byte pieces, 4 specials, ~500 merges; the tiny model's vocab (1024) is larger
MODEL_VOCAB = 1024
SEQ_LEN = 64
CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def sp() -> spm.SentencePieceProcessor:
    model = train_tokenizer(_generated_documents(300, seed=7), TOKENIZER_VOCAB)
    return spm.SentencePieceProcessor(model_proto=model)


def _documents(sp) -> list[list[int]]:
    """Held-out texts (rare characters fall back to bytes), and each of them again cut so that it starts with a
    "▁word" piece: the first word of a document, right after BOS, whose space is not in the decoded text."""
    encoded = [sp.encode(text) for text in DOCUMENTS + _generated_documents(40, seed=8)]
    cut = [ids[k:] for ids in encoded
           if (k := next((i for i, t in enumerate(ids) if i and sp.id_to_piece(t).startswith(SPACE_MARK)), 0))]
    return encoded + cut


def _decoded_bytes(sp, ids: list[int]) -> int:
    return len(sp.decode(ids).encode("utf-8"))


def test_documents_exercise_every_byte_rule(sp):
    docs = _documents(sp)
    pieces = [sp.id_to_piece(t) for ids in docs for t in ids]
    assert sum(sp.is_byte(t) for ids in docs for t in ids) >= 20  # byte fallback
    assert any(len(p.encode()) > len(p) and not p.startswith("<0x") for p in pieces)  # multi-byte pieces
    assert any(p.startswith(SPACE_MARK) and len(p.encode()) > len(p) + 2 for p in pieces)  # "▁" + multi-byte text
    assert SPACE_MARK in pieces  # the bare space piece
    assert sum(sp.id_to_piece(ids[0]).startswith(SPACE_MARK) for ids in docs) >= 20  # "▁word" right after BOS
    assert not any(sp.is_unknown(t) for ids in docs for t in ids)  # byte fallback leaves no <unk>


def test_lut_byte_sum_of_each_document_is_its_decoded_length(sp):
    tables = build_byte_tables(sp, MODEL_VOCAB)
    wrong = [(sp.decode(ids)[:40], _lut_total(tables, ids), _decoded_bytes(sp, ids))
             for ids in _documents(sp) if _lut_total(tables, ids) != _decoded_bytes(sp, ids)]
    assert wrong == []


@pytest.fixture(scope="module")
def stream(sp) -> tuple[torch.Tensor, int]:
    """[BOS] + ids per document, padded with BOS to k * SEQ_LEN + 1 tokens (a BOS target adds no bytes), and the
    number of bytes its targets decode to."""
    docs = _documents(sp)
    tokens = [t for ids in docs for t in [BOS, *ids]]
    tokens += [BOS] * (-(len(tokens) - 1) % SEQ_LEN)
    return torch.tensor(tokens, dtype=torch.int32), sum(_decoded_bytes(sp, ids) for ids in docs)


def _window_nll(model, tokens: torch.Tensor, start: int, end: int) -> torch.Tensor:
    """float64 NLL of the targets tokens[start + 1 : end + 1] given inputs tokens[start : end]."""
    x, y = tokens[start:end].long()[None], tokens[start + 1 : end + 1].long()[None]
    with torch.no_grad():
        logits = model.logits(x).double()
    return -torch.log_softmax(logits, dim=-1).gather(-1, y[..., None]).view(-1)


def _scored_by_windows(model, tokens: torch.Tensor, stride: int) -> float:
    """The sliding eval from its definition: windows of SEQ_LEN inputs start every `stride` positions; the
    first scores all its targets, every later one only its last `stride` (fewer at the end of the stream)."""
    n = tokens.numel() - 1
    total = _window_nll(model, tokens, 0, min(SEQ_LEN, n)).sum().item()
    start = stride
    while start + SEQ_LEN - stride < n:
        first = start + SEQ_LEN - stride
        end = min(start + SEQ_LEN, n)
        total += _window_nll(model, tokens, start, end)[first - start :].sum().item()
        start += stride
    return total


@pytest.mark.parametrize("stride", [SEQ_LEN, 16])
def test_val_bpb_is_the_nll_over_the_decoded_bytes(sp, stream, stride):
    tokens, n_bytes = stream
    model = _tiny_model()
    tables = build_byte_tables(sp, MODEL_VOCAB)
    ctx = EvalContext(ValStream(tokens, bos_id=BOS), tables, SEQ_LEN, BOS, batch_seqs=16, device=CPU)
    result = evaluate_full(model, ctx) if stride == SEQ_LEN else evaluate_sliding(model, ctx, stride)
    nll_sum = _scored_by_windows(model, tokens, stride)
    n = tokens.numel() - 1
    assert result["tokens"] == n and result["bytes"] == n_bytes
    assert result["val_loss"] == pytest.approx(nll_sum / n, rel=1e-9)
    assert result["val_bpb"] == pytest.approx(nll_sum / math.log(2.0) / n_bytes, rel=1e-9)
