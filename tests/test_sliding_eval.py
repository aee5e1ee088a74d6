"""Exact sliding-window evaluation: each target scored once; stride = seq_len is the official eval."""

import numpy as np
import pytest
import torch

from golf.config.schema import ArchConfig
from golf.eval.bpb import BPBAccumulator, ByteTables, build_byte_tables
from golf.eval.full import evaluate_full
from golf.eval.sliding import evaluate_sliding, shard, sliding_windows
from golf.models.gpt import GPT
from golf.ttt.ledger import Ledger

VOCAB = 64


def _tables() -> ByteTables:
    g = torch.Generator().manual_seed(0)
    base = torch.randint(0, 4, (VOCAB,), generator=g).to(torch.int16)
    space = torch.rand(VOCAB, generator=g) < 0.3
    boundary = torch.zeros(VOCAB, dtype=torch.bool)
    boundary[:2] = True
    base[:2] = 0
    return ByteTables(base, space, boundary, torch.zeros(VOCAB, dtype=torch.bool))


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
    assert ledger.checks()["each_token_scored_once"]["pass"]
    assert sum(len(shard(windows, r, 3)) for r in range(3)) == len(windows)


def test_stride_equal_to_seq_len_is_the_full_eval(single_thread):
    model, tables = _model(), _tables()
    tokens = torch.randint(0, VOCAB, (8 * 64 + 1,), generator=torch.Generator().manual_seed(1))
    cpu = torch.device("cpu")
    full = evaluate_full(model, tokens, tables, 64, 3, 0, 1, cpu, None)
    slid = evaluate_sliding(model, tokens, tables, 64, 64, 3, 0, 1, cpu, None)
    assert slid["tokens"] == full["tokens"] == 512 and slid["bytes"] == full["bytes"]
    assert slid["val_bpb"] == pytest.approx(full["val_bpb"], abs=1e-9)
    shorter = evaluate_sliding(model, tokens, tables, 64, 16, 5, 0, 1, cpu, None)
    assert shorter["tokens"] == 512 and shorter["bytes"] == full["bytes"]
    assert shorter["val_bpb"] != pytest.approx(full["val_bpb"], abs=1e-6)  # more context changes the score


def test_ranks_shares_sum_to_the_single_process_result(single_thread):
    model, tables = _model(), _tables()
    tokens = torch.randint(0, VOCAB, (300,), generator=torch.Generator().manual_seed(2))
    cpu = torch.device("cpu")
    whole = evaluate_sliding(model, tokens, tables, 64, 16, 4, 0, 1, cpu, None)
    parts = [evaluate_sliding(model, tokens, tables, 64, 16, 4, r, 2, cpu, None) for r in range(2)]
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
