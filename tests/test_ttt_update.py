"""How strongly stream TTT moves the weights, pinned by an update computed here from first principles.

Legal stream TTT scores chunk c, then takes SGD-with-momentum steps on the mean NLL of exactly the targets it
just scored, with the LR on a cosine over the C chunks, lr x cos(c / (C - 1)) as PR #549: it would reach 0 at the last
chunk, which is scored and never trained. With one epoch and a whole chunk per batch that is one step per chunk, so
the adapted weights and every chunk's score follow from a few lines of autograd.
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from test_sliding_eval import VOCAB, _ctx, _model

from golf.config.ttt import TTTConfig, TTTMode
from golf.ttt import session

SEQ_LEN = 64
CHUNK = 128  # two sequences per chunk
CHUNKS = 4
LR, MOMENTUM = 0.05, 0.9

pytestmark = pytest.mark.usefixtures("single_thread")


def _golf_stream_ttt(model, tokens: torch.Tensor) -> dict:
    """golf's legal stream TTT over `tokens`, adapting `model` in place: one epoch, a chunk per batch, no gradient
    clipping. The one call into golf's TTT API in this file."""
    ttt = TTTConfig(name="sgd", mode=TTTMode.stream, chunk_tokens=CHUNK, epochs=1, lr=LR, momentum=MOMENTUM,
                    batch_seqs=CHUNK // SEQ_LEN, grad_clip_norm=0.0)
    ctx = _ctx(tokens, seq_len=SEQ_LEN, batch_seqs=4)
    return session.test_time_train(model, ctx, ttt, stride=SEQ_LEN, seed=0, diagnose=False)


def _chunk(tokens: torch.Tensor, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of chunk c's positions, as sequences of SEQ_LEN."""
    a, b = c * CHUNK, (c + 1) * CHUNK
    return tokens[a:b].long().view(-1, SEQ_LEN), tokens[a + 1 : b + 1].long().view(-1, SEQ_LEN)


def _mean_nll(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model.logits(x).float().reshape(-1, VOCAB), y.reshape(-1))


def _expected(model, tokens: torch.Tensor) -> tuple[torch.nn.Module, float]:
    """The adapted model and the mean NLL of the pass: score chunk c with the current weights, then (except for
    the last chunk) one SGD step, buf = momentum * buf + grad, w -= lr * cosine(c / (C - 1)) * buf."""
    model = copy.deepcopy(model)
    params = list(model.parameters())
    buffers = [torch.zeros_like(p) for p in params]
    trained = CHUNKS - 1
    nll_sum = 0.0
    for c in range(CHUNKS):
        x, y = _chunk(tokens, c)
        with torch.no_grad():
            nll_sum += _mean_nll(model, x, y).item() * y.numel()
        if c == trained:
            break
        grads = torch.autograd.grad(_mean_nll(model, x, y), params)
        factor = 0.5 * (1.0 + math.cos(math.pi * c / (CHUNKS - 1)))
        with torch.no_grad():
            for p, buf, g in zip(params, buffers, grads):
                buf.mul_(MOMENTUM).add_(g)
                p.sub_(LR * factor * buf)
    return model, nll_sum / (CHUNKS * CHUNK)


def test_stream_ttt_update_and_scores_match_first_principles():
    tokens = torch.randint(2, VOCAB, (CHUNKS * CHUNK + 1,), generator=torch.Generator().manual_seed(5))
    start = _model()
    expected_model, expected_loss = _expected(start, tokens)
    adapted = _model()
    result = _golf_stream_ttt(adapted, tokens)
    assert result["compliant"] and result["tokens"] == CHUNKS * CHUNK
    assert result["val_loss"] == pytest.approx(expected_loss, rel=1e-6)
    moved = 0.0
    for (name, p0), p, want in zip(start.named_parameters(), adapted.parameters(), expected_model.parameters()):
        torch.testing.assert_close(p.detach() - p0.detach(), want.detach() - p0.detach(), rtol=1e-4, atol=1e-7,
                                   msg=f"update of {name}")
        moved += (want - p0).abs().sum().item()
    assert moved > 1e-2  # the steps were real, so a wrong LR or loss scale cannot hide
