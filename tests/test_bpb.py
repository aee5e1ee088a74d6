"""Bits-per-byte accounting (golf.eval.bpb) and the non-overlapping evaluator (golf.eval.full) on the official
FineWeb tokenizers. They are not in a fresh clone, so these tests skip there; the same checks on a tokenizer golf
trains itself always run (tests/test_bpb_trained_tokenizer.py).

The headline check scores a fixed model on a fixed FineWeb-sp1024 token stream with golf and
compares it with a computation written here from scratch: float64 NLL from the raw logits, and a
byte count taken from the text SentencePiece decodes, not from golf's lookup tables.
"""

import itertools
import math
import random

import pytest
import sentencepiece as spm
import torch
from optional_assets import official_tokenizer

from golf.config.arch import ArchConfig
from golf.eval.bpb import build_byte_tables
from golf.eval.context import EvalContext
from golf.eval.full import evaluate_full
from golf.eval.val_stream import ValStream
from golf.models.registry import build_model

BOS = 1
VOCAB = 1024
SEQ_LEN = 64
CPU = torch.device("cpu")

# Hand-written documents, each aimed at one corner of the byte accounting.
DOCUMENTS = [
    "The quick brown fox jumps over the lazy dog. It's 2024, and prices rose 3.5% to $1,299!",
    "   Leading spaces, and trailing spaces.   ",
    "Multiple    spaces   between\twords\nand new lines.\n\nSecond paragraph: (parens), [brackets]; \"quotes\"...",
    "café naïve 東京 🙂 — déjà vu in Zürich and São Paulo.",
    "東京 starts this document with an unknown character, and 🙂 ends it 🙂",
    "Numbers: 0 1 2 3 10 100 1000 3.14159 -42 1e-9 0x1F, 12:30pm on 2024-06-01.",
    "I’m using curly “quotes” and ‘apostrophes’ – an en dash – and an em dash—here.",
    "URLs like https://example.com/path?q=1&r=2 and emails like a.b@c.org; C++ & C# are languages.",
]

# Vocabulary for the generated documents: common words, rare words that split into many pieces,
# numbers and words outside the sp1024 character set.
WORDS = (
    "the of and to in is was for that with as on by at from it an be this which or are have not had "
    "but were his her they one all their there been has when who will more no if out so said what up "
    "its about into than them can only other new some could time these two may then do first any my "
    "photosynthesis quantization hyperparameter Mississippi onomatopoeia xylophone "
    "1 7 42 365 2024 3.14 99% $5 No.1 café naïve résumé Zürich 東京 😀 Ελλάδα"
).split()
PUNCTUATION = [".", ",", "!", "?", ";", ":", " -", "'s", ")", "\""]
SEPARATORS = [" ", " ", " ", " ", "  ", "\n", "\t", " \n "]


pytestmark = pytest.mark.usefixtures("single_thread")


def _generated_documents(count: int, seed: int, ascii_only: bool = False) -> list[str]:
    """Deterministic pseudo-text: enough tokens that the fp32 rounding in golf's loss averages out."""
    rng = random.Random(seed)
    words = [w for w in WORDS if w.isascii()] if ascii_only else WORDS
    docs = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(20, 120)):
            word = rng.choice(words)
            if rng.random() < 0.15:
                word = word.capitalize()
            if rng.random() < 0.2:
                word += rng.choice(PUNCTUATION)
            parts.append(word)
            parts.append(rng.choice(SEPARATORS))
        docs.append("".join(parts))
    return docs


def _tokenizer(vocab: int) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(official_tokenizer(vocab)))


def _decoded_bytes(sp, ids: list[int]) -> list[int]:
    """Bytes each token of one document adds to the decoded text (the ground truth).

    A token's bytes are len(decode(prefix + token)) - len(decode(prefix)) in UTF-8. The official
    accounting treats <unk> as a boundary worth 0 bytes, while sp.decode renders it as " ⁇ " and
    keeps the space of the word after it. Both differences are by design of the rule (the unknown
    character's real bytes are not recoverable from the id), so here <unk> counts 0 bytes and
    restarts decoding: the text after it is decoded like the start of a document, whose first
    piece loses its "▁" exactly as the first word after BOS does.
    """
    out = []
    segment_start = 0
    for j, token in enumerate(ids):
        if sp.is_unknown(token):
            out.append(0)
            segment_start = j + 1
            continue
        before = sp.decode(ids[segment_start:j])
        after = sp.decode(ids[segment_start : j + 1])
        # Decoding must only ever append text; otherwise per-token differences would be meaningless.
        assert after.startswith(before), (before, after)
        out.append(len(after.encode("utf-8")) - len(before.encode("utf-8")))
    return out


def _stream(sp, documents: list[str]) -> tuple[list[int], list[int]]:
    """The documents as one stream [BOS] + ids per document, and the ground-truth bytes of each
    stream position when it is scored as a target (BOS is worth 0: it adds no text)."""
    tokens, truth = [], []
    for text in documents:
        ids = sp.encode(text)
        tokens += [BOS] + ids
        truth += [0] + _decoded_bytes(sp, ids)
    return tokens, truth


def _tiny_model(seed: int = 0, noise: float = 0.1):
    torch.manual_seed(seed)
    arch = ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=64, num_heads=4, num_kv_heads=2)
    model = build_model(arch)
    # The zero-initialized projections would make every position predict the same thing; noise on
    # all weights gives position- and context-dependent predictions.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * noise)
    return model.eval()


@pytest.fixture(scope="module")
def sp1024():
    return _tokenizer(1024)


@pytest.fixture(scope="module")
def scored_stream(sp1024):
    """val tokens of length k*T+1 and the ground-truth bytes of targets 1..k*T."""
    tokens, truth = _stream(sp1024, DOCUMENTS + _generated_documents(80, seed=1234))
    k = (len(tokens) - 1) // SEQ_LEN
    n = k * SEQ_LEN + 1
    return torch.tensor(tokens[:n], dtype=torch.int32), truth[1:n]


@pytest.fixture(scope="module")
def model():
    return _tiny_model()


def _evaluate(model, val_tokens, tables, **kw):
    args = dict(seq_len=SEQ_LEN, bos_id=BOS, batch_seqs=16, rank=0, world_size=1, device=CPU, autocast_dtype=None)
    args.update(kw)
    return evaluate_full(model, EvalContext(ValStream(val_tokens, bos_id=BOS), tables, **args))


def test_stream_exercises_every_byte_rule(sp1024, scored_stream):
    # Guards the headline test: the stream must contain each case the accounting distinguishes.
    val_tokens, _ = scored_stream
    tokens = val_tokens.tolist()
    targets = list(itertools.pairwise(tokens))  # (input, target) pairs
    assert len(tokens) > 8000
    assert sum(1 for _, y in targets if y == BOS) >= 50  # BOS scored as a target
    assert sum(1 for _, y in targets if sp1024.is_unknown(y)) >= 20  # unk scored
    assert any(x == BOS and sp1024.is_unknown(y) for x, y in targets)  # a document starting with unk
    assert any(sp1024.is_unknown(x) and sp1024.id_to_piece(y).startswith("▁") for x, y in targets)
    assert any(x != BOS and sp1024.id_to_piece(y) == "▁" for x, y in targets)  # bare space piece
    assert any(len(sp1024.id_to_piece(y).encode()) > len(sp1024.id_to_piece(y)) for _, y in targets)  # multibyte


def test_val_bpb_matches_independent_computation(model, sp1024, scored_stream):
    val_tokens, truth = scored_stream
    result = _evaluate(model, val_tokens, build_byte_tables(sp1024, VOCAB))

    x = val_tokens[:-1].long().view(-1, SEQ_LEN)
    y = val_tokens[1:].long().view(-1, SEQ_LEN)
    with torch.no_grad():
        logits = model.logits(x).double()
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
    # The model must make real, varied predictions, or the comparison would prove little.
    assert nll.std().item() > 0.5

    n_tokens = y.numel()
    n_bytes = sum(truth)
    loss_sum = nll.sum().item()
    expected_loss = loss_sum / n_tokens
    expected_bpb = loss_sum / math.log(2.0) / n_bytes

    assert result["tokens"] == n_tokens
    assert result["bytes"] == n_bytes
    # golf computes the cross-entropy in fp32 (as the baseline does) and sums in float64; over ~10k
    # tokens its rounding averages to ~1e-10 relative, so 1e-9 still catches any real difference.
    assert abs(result["val_loss"] - expected_loss) / expected_loss < 1e-9
    assert abs(result["val_bpb"] - expected_bpb) / expected_bpb < 1e-9


def test_lut_bytes_per_target_match_decoded_text(sp1024, scored_stream):
    # Same ground truth as above, token by token, so that a failure points at the offending piece.
    val_tokens, truth = scored_stream
    tables = build_byte_tables(sp1024, VOCAB)
    inputs, targets = val_tokens[:-1].long(), val_tokens[1:].long()
    lut = tables.target_bytes(inputs, targets).tolist()
    wrong = [(sp1024.id_to_piece(int(inputs[i])), sp1024.id_to_piece(int(targets[i])), lut[i], truth[i])
             for i in range(len(lut)) if lut[i] != truth[i]]
    assert wrong == []


def _lut_total(tables, ids: list[int]) -> int:
    inputs = torch.tensor([BOS] + ids[:-1])
    return int(tables.target_bytes(inputs, torch.tensor(ids)).sum())


@pytest.mark.parametrize("vocab", [1024, 2048, 4096, 8192])
def test_canonical_check_lut_total_equals_decoded_length(vocab):
    # docs/rules.md#byte-lookup-table: for a document, the LUT byte sum equals len(sp.decode(doc).encode("utf-8")).
    sp = _tokenizer(vocab)
    tables = build_byte_tables(sp, vocab)
    checked = 0
    for text in DOCUMENTS + _generated_documents(20, seed=99, ascii_only=True):
        ids = sp.encode(text)
        if any(sp.is_unknown(t) for t in ids):
            continue  # <unk> is 0 bytes by rule but decodes to " ⁇ "; covered by the test above
        assert _lut_total(tables, ids) == len(sp.decode(ids).encode("utf-8")), text
        checked += 1
    assert checked >= 20


def test_canonical_check_with_byte_fallback_sp8192():
    sp = _tokenizer(8192)
    tables = build_byte_tables(sp, 8192)
    for text in ["café naïve 東京 🙂", "Ελλάδα and русский текст", "emoji run 😀😃😄 done", "東京"]:
        ids = sp.encode(text)
        assert any(sp.is_byte(t) for t in ids), "text must trigger byte fallback"
        assert not any(sp.is_unknown(t) for t in ids)
        # These texts are already NFKC-normalized, so the decoded text is the original text and each
        # byte piece must count exactly 1 byte (not 3 for a replacement character).
        assert sp.decode(ids) == text
        assert _lut_total(tables, ids) == len(text.encode("utf-8"))


def test_byte_tables_control_and_unknown_ids_are_zero_byte_boundaries(sp1024):
    tables = build_byte_tables(sp1024, VOCAB)
    for token in range(4):  # pad, bos, eos, unk
        assert tables.is_boundary[token]
        assert tables.base_bytes[token] == 0
        assert not tables.has_leading_space[token]
    assert not tables.is_boundary[4:VOCAB].any()
    assert tables.base_bytes.dtype == torch.int16
    assert tables.has_leading_space.dtype == torch.bool and tables.is_boundary.dtype == torch.bool


def test_byte_tables_leading_space_piece(sp1024):
    tables = build_byte_tables(sp1024, VOCAB)
    the = sp1024.piece_to_id("▁the")
    letter = sp1024.piece_to_id("a")
    assert sp1024.id_to_piece(the) == "▁the"
    assert tables.has_leading_space[the] and tables.base_bytes[the] == len("the")
    assert not tables.has_leading_space[letter] and tables.base_bytes[letter] == 1
    # A multibyte piece counts UTF-8 bytes, not characters.
    quote = sp1024.piece_to_id("’")
    assert tables.base_bytes[quote] == 3
    # The bare "▁" piece is one space byte, and only after a non-boundary token.
    space = sp1024.piece_to_id("▁")
    assert tables.base_bytes[space] == 0 and tables.has_leading_space[space]

    def target_bytes(prev, target):
        return int(tables.target_bytes(torch.tensor([prev]), torch.tensor([target]))[0])

    assert target_bytes(BOS, the) == 3  # first word of a document: no space byte
    assert target_bytes(3, the) == 3  # after <unk>, also a boundary
    assert target_bytes(letter, the) == 4  # after a normal token: the space counts
    assert target_bytes(letter, space) == 1 and target_bytes(BOS, space) == 0
    assert target_bytes(the, BOS) == 0  # predicting the next document's BOS adds no bytes


def test_byte_tables_size_is_max_of_tokenizer_and_model_vocab(sp1024):
    bigger = build_byte_tables(sp1024, 1536)
    assert bigger.base_bytes.numel() == bigger.is_boundary.numel() == bigger.has_leading_space.numel() == 1536
    # Ids the tokenizer never produces are zero-byte boundaries.
    assert bigger.is_boundary[VOCAB:].all() and (bigger.base_bytes[VOCAB:] == 0).all()
    smaller = build_byte_tables(sp1024, 512)
    assert smaller.base_bytes.numel() == VOCAB
    assert torch.equal(smaller.base_bytes, bigger.base_bytes[:VOCAB])


def test_sharded_eval_sums_to_the_single_rank_result(model, sp1024, scored_stream):
    val_tokens, _ = scored_stream
    tables = build_byte_tables(sp1024, VOCAB)
    # An odd number of sequences, so that the two ranks get unequal slices.
    n_seqs = (val_tokens.numel() - 1) // SEQ_LEN
    if n_seqs % 2 == 0:
        n_seqs -= 1
    val_tokens = val_tokens[: n_seqs * SEQ_LEN + 1]

    whole = _evaluate(model, val_tokens, tables)
    # torch.distributed is not initialized, so each call returns its own rank's sums only.
    parts = [_evaluate(model, val_tokens, tables, rank=r, world_size=2) for r in (0, 1)]
    assert parts[0]["tokens"] == (n_seqs // 2) * SEQ_LEN  # rank 0 takes [0, S/2) rounded down
    assert parts[0]["tokens"] != parts[1]["tokens"]

    tokens = sum(p["tokens"] for p in parts)
    n_bytes = sum(p["bytes"] for p in parts)
    loss_sum = sum(p["val_loss"] * p["tokens"] for p in parts)
    assert tokens == whole["tokens"] == n_seqs * SEQ_LEN
    assert n_bytes == whole["bytes"]
    loss = loss_sum / tokens
    bpb = loss / math.log(2.0) * tokens / n_bytes
    assert abs(loss - whole["val_loss"]) / whole["val_loss"] < 1e-12
    assert abs(bpb - whole["val_bpb"]) / whole["val_bpb"] < 1e-12


def test_max_seqs_caps_the_scored_tokens(model, sp1024, scored_stream):
    val_tokens, truth = scored_stream
    tables = build_byte_tables(sp1024, VOCAB)
    capped = _evaluate(model, val_tokens, tables, max_seqs=7)
    assert capped["tokens"] == 7 * SEQ_LEN
    assert capped["bytes"] == sum(truth[: 7 * SEQ_LEN])
    # Capping is the same as evaluating only the first 7 sequences of the stream.
    prefix = _evaluate(model, val_tokens[: 7 * SEQ_LEN + 1], tables)
    assert capped == prefix
    # A cap larger than the stream changes nothing.
    assert _evaluate(model, val_tokens, tables, max_seqs=10**6) == _evaluate(model, val_tokens, tables)
