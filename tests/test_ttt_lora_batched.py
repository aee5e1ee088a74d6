"""Batched per-document LoRA TTT: batching changes no number, one document's update from first principles, and
the queue the documents are taken in."""

import math

import pytest
import torch
import torch.nn.functional as F
from test_sliding_eval import VOCAB, _ctx, _model

from golf.config.ttt import DocQueue, TTTConfig, TTTMode, TTTOptimizer
from golf.ttt import session
from golf.ttt.documents import queue_batches

pytestmark = pytest.mark.usefixtures("single_thread")
BOS = 1


def _cfg(**kw) -> TTTConfig:
    return TTTConfig(**{"name": "lora", "mode": TTTMode.lora, "optimizer": TTTOptimizer.adamw, "lora_chunk": 32,
                        "lora_rank": 2, "lr": 0.05, "epochs": 2, **kw})


def _tokens(starts=(0, 40, 128, 150, 300, 384)) -> torch.Tensor:
    """512 predictions over documents of uneven length (BOS at `starts`)."""
    tokens = torch.randint(2, VOCAB, (513,), generator=torch.Generator().manual_seed(3))
    tokens[list(starts)] = BOS
    return tokens


def _run(cfg: TTTConfig, tokens: torch.Tensor) -> dict:
    return session.test_time_train(_model(), _ctx(tokens, seq_len=64), cfg, 32, seed=5, diagnose=False)


@pytest.mark.parametrize("extra", [{}, {"lora_head": True, "lora_targets": r"attn\.c_[qkv]$|\.attn$|\.mlp$"}])
def test_batching_and_the_queue_change_no_number(extra):
    """Each document has its own adapters, its own mean loss and per-element Adam: 6 documents one at a time in
    val order (the unbatched protocol) and 4 side by side from the length-sorted queue score the same."""
    tokens = _tokens()
    alone = _run(_cfg(**extra), tokens)
    batched = _run(_cfg(lora_batch_docs=4, lora_queue=DocQueue.length, **extra), tokens)
    assert batched["val_loss"] == pytest.approx(alone["val_loss"], rel=1e-6)
    frozen = _run(_cfg(lr=0.0, **extra), tokens)
    assert alone["val_loss"] < frozen["val_loss"] - 1e-3  # the adapters did learn
    for out in (alone, batched):
        assert all(c["pass"] for c in out["checks"].values()), out["checks"]
    assert batched["queue"]["order"] == "length" and batched["queue"]["batches"] == 2


def test_one_documents_update_from_first_principles():
    """One document, two chunks, one step: A is Kaiming-uniform from seed + 0, B = 0, so only B moves, and Adam's
    first step is lr * sign(grad); grad_B = grad_W A^T for W + B A. The second chunk is scored with
    W - lr sign(grad_W A^T) A on c_q and c_v, which the hand-built model computes here without golf's adapters."""
    tokens = torch.randint(2, VOCAB, (65,), generator=torch.Generator().manual_seed(4))
    tokens[0] = BOS
    cfg = _cfg(epochs=1, lora_rank=3, lr=0.01)
    out = _run(cfg, tokens)

    model = _model()
    targets = [m for name, m in model.named_modules() if name.endswith(("attn.c_q", "attn.c_v"))]
    torch.manual_seed(5)
    lora_a = [torch.empty(3, m.weight.shape[1]) for m in targets]
    for a in lora_a:
        torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
    x, y = tokens[None, :-1], tokens[None, 1:]
    first = F.cross_entropy(model.logits(x[:, :32])[0], y[0, :32], reduction="sum")
    weights = [m.weight for m in targets]
    grads = torch.autograd.grad(first / 32, weights)
    with torch.no_grad():
        for m, a, g in zip(targets, lora_a, grads):
            m.weight += (-cfg.lr * torch.sign(g @ a.T)) @ a
        second = F.cross_entropy(model.logits(x)[0, 32:], y[0, 32:], reduction="sum")
    assert out["val_loss"] == pytest.approx(float(first.detach() + second) / 64, rel=1e-6)


def test_the_length_queue_takes_the_longest_batch_first():
    docs = [(0, 5), (5, 7), (7, 20), (20, 21), (21, 30)]  # lengths 5, 2, 13, 1, 9
    assert queue_batches(docs, 2, "length") == [[2], [0, 4], [3, 1]]  # sorted 3 1 0 4 2, cut in twos
    assert queue_batches(docs, 2, "stream") == [[0, 1], [2, 3], [4]]


def test_a_short_last_batch_leaves_no_nan_in_the_padding_rows():
    """5 documents in batches of 2: the length queue's first batch holds one document, so the adapters' second row
    is padding. Its A must not be torch.empty's leftovers (NaN there made every adapter gradient statistic NaN and
    results.json unwritable): filled with NaN before the reset, it is zero after, and the SNR summary is finite."""
    from golf.ttt.lora_adapters import BatchedAdapters

    adapters = BatchedAdapters(_model(), r"attn\.c_q$", 2, 2, head=True)
    with torch.no_grad():
        for a in adapters.a:
            a.fill_(float("nan"))
    adapters.reset([7])
    assert all(torch.isfinite(a).all() and not a[1].any() for a in adapters.a)
    out = _run(_cfg(lora_batch_docs=2, lora_queue=DocQueue.length), _tokens((0, 40, 128, 150, 300)))
    values = [v for series in out["snr"]["mean"].values() for v in series.values()]
    assert values and all(math.isfinite(v) for v in values)
