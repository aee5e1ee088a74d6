"""Exact sliding-window evaluation: each target scored once; stride = seq_len is the official eval."""

import numpy as np
import pytest
import torch

from golf.config.arch import ArchConfig
from golf.eval.bpb import BPBAccumulator, ByteTables, build_byte_tables
from golf.eval.context import EvalContext
from golf.eval.full import evaluate_full
from golf.eval.ledger import Ledger
from golf.eval.sliding import evaluate_sliding, shard, sliding_windows
from golf.eval.val_stream import ValStream
from golf.models.gpt import GPT

VOCAB = 64


def _tables() -> ByteTables:
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 4, (VOCAB,), generator=g).to(torch.int16)
    space = torch.rand(VOCAB, generator=g) < 0.3
    boundary = torch.zeros(VOCAB, dtype=torch.bool)
    boundary[:2] = True
    base[:2] = 0
    return ByteTables(base, space, boundary, torch.zeros(VOCAB, dtype=torch.bool))


def _ctx(tokens: torch.Tensor, seq_len: int = 64, batch_seqs: int = 8, rank: int = 0, world_size: int = 1,
         ledger: bool = False, bos_id: int = 1) -> EvalContext:
    """A CPU fp32 eval context over `tokens` (with a fresh ledger when asked)."""
    ctx = EvalContext(ValStream(tokens, bos_id=bos_id), _tables(), seq_len, bos_id, batch_seqs, rank=rank,
                      world_size=world_size)
    return ctx.with_ledger() if ledger else ctx


def _model() -> GPT:
    torch.manual_seed(0)
    model = GPT(ArchConfig(vocab_size=VOCAB, num_layers=2, model_dim=32, num_heads=2, num_kv_heads=1,
                           tied_embed_init_std=0.5))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # zero-init projections would hide context effects
    return model


@pytest.mark.parametrize("n", [1, 63, 64, 65, 200, 511, 512, 1000])
@pytest.mark.parametrize("seq_len,stride", [(64, 64), (64, 16), (64, 1), (32, 8), (48, 16)])
def test_every_target_scored_exactly_once(n, seq_len, stride):
    counts = np.zeros(n, dtype=np.int64)
    context = np.full(n, -1)
    for w in sliding_windows(n, seq_len, stride):
        a, b = w.scored
        assert w.start <= a and b <= w.start + w.length <= n and w.length <= seq_len
        counts[a:b] += 1
        context[a:b] = np.arange(a, b) - w.start
    assert (counts == 1).all()
    # every target past the first window keeps at least seq_len - stride tokens of context
    assert (context[seq_len:] >= seq_len - stride).all()


def test_ledger_agrees_and_ranks_partition_the_windows():
    windows = sliding_windows(1000, 64, 16)
    ledger = Ledger(1000)
    for rank in range(3):
        for w in shard(windows, rank, 3):
            ledger.record("score", *w.scored)
    assert ledger.checks(1000)["each_token_scored_once"]["pass"]
    assert not ledger.checks(999)["each_token_scored_once"]["pass"]  # the accumulator must agree too
    assert sum(len(shard(windows, r, 3)) for r in range(3)) == len(windows)


@pytest.mark.parametrize("stride", [64, 16])
def test_the_scorer_enters_exactly_the_positions_it_summed(single_thread, stride):
    tokens = torch.randint(0, VOCAB, (5 * 64 + 1,), generator=torch.Generator().manual_seed(4))
    ctx = _ctx(tokens, ledger=True)
    result = evaluate_sliding(_model(), ctx, stride)
    checks = ctx.ledger.checks(result["tokens"])
    assert checks["each_token_scored_once"]["pass"], checks
    assert result["tokens"] == 320 and [(e.start, e.end) for e in ctx.ledger.events] == [(0, 320)]
    full_ctx = _ctx(tokens, ledger=True)
    assert evaluate_full(_model(), full_ctx)["tokens"] == 320
    assert full_ctx.ledger.checks(320)["each_token_scored_once"]["pass"]


def test_stride_equal_to_seq_len_is_the_full_eval(single_thread):
    model = _model()
    tokens = torch.randint(0, VOCAB, (8 * 64 + 1,), generator=torch.Generator().manual_seed(1))
    full = evaluate_full(model, _ctx(tokens, batch_seqs=3))
    slid = evaluate_sliding(model, _ctx(tokens, batch_seqs=3), 64)
    assert slid["tokens"] == full["tokens"] == 512 and slid["bytes"] == full["bytes"]
    assert slid["val_bpb"] == pytest.approx(full["val_bpb"], abs=1e-9)
    shorter = evaluate_sliding(model, _ctx(tokens, batch_seqs=5), 16)
    assert shorter["tokens"] == 512 and shorter["bytes"] == full["bytes"]
    assert shorter["val_bpb"] != pytest.approx(full["val_bpb"], abs=1e-6)  # more context changes the score


def test_ranks_shares_sum_to_the_single_process_result(single_thread):
    model = _model()
    tokens = torch.randint(0, VOCAB, (300,), generator=torch.Generator().manual_seed(2))
    whole = evaluate_sliding(model, _ctx(tokens, batch_seqs=4), 16)
    parts = [evaluate_sliding(model, _ctx(tokens, batch_seqs=4, rank=r, world_size=2), 16) for r in range(2)]
    assert sum(p["tokens"] for p in parts) == whole["tokens"] == 299
    loss = sum(p["val_loss"] * p["tokens"] for p in parts) / whole["tokens"]
    assert loss == pytest.approx(whole["val_loss"], rel=1e-12)


def test_unknown_targets_are_counted_where_scored():
    """C7: <unk> targets add NLL and no bytes (official metric); the result says how many were scored."""
    tables = _tables()
    tables.is_unknown[3] = True
    gen = torch.Generator().manual_seed(5)
    inputs, targets = torch.randint(0, 8, (2, 40), generator=gen), torch.randint(0, 8, (2, 40), generator=gen)
    scored = torch.rand(2, 40, generator=gen) < 0.5
    acc = BPBAccumulator(torch.device("cpu"))
    acc.add(torch.ones(2, 40), inputs, targets, tables, scored)
    acc.add(torch.ones(1, 40), inputs[:1], targets[:1], tables)
    expected = int(((targets == 3) & scored).sum()) + int((targets[0] == 3).sum())
    assert acc.result()["unk_targets"] == expected > 0


def test_byte_tables_mark_the_tokenizers_unknown_piece(demo_cache):
    import sentencepiece as spm

    [model_file] = demo_cache.rglob("tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    tables = build_byte_tables(sp, sp.vocab_size() + 8)
    assert torch.nonzero(tables.is_unknown).flatten().tolist() == [sp.unk_id()]
