"""The token n-gram tilt (PR #2135): its hints against the records' left-to-right pass written out with
dictionaries, the scored distribution (sums to 1 over the vocabulary, equals the closed form), and the refused
variants. Its causality with every protocol is probed in tests/test_ttt_legality.py."""

import math
import random

import pytest
import torch
from conftest import FAST_RUN, job_dirs, read_results, run_golf
from test_sliding_eval import VOCAB, _ctx, _model

from golf.config.evaluation import NgramTiltConfig
from golf.eval.ngram_tilt import NgramTilt, continuation_hints, with_tilt
from golf.eval.sliding import evaluate_sliding

pytestmark = pytest.mark.usefixtures("single_thread")


def records_pass(inputs: list[int], targets: list[int], width: int, threshold: float) -> tuple[list, list]:
    """The records' state, step by step: look the context of the last `width` inputs up (its total, its top
    continuation, which changes only when another token's count passes it), then add this step's target."""
    table: dict[tuple, dict] = {}
    hints, gates = [0] * len(inputs), [False] * len(inputs)
    for i in range(width - 1, len(inputs)):
        context = tuple(inputs[i - width + 1 : i + 1])
        entry = table.setdefault(context, {"counts": {}, "top": 0, "token": 0})
        total = sum(entry["counts"].values())
        if total and entry["top"] >= threshold * total:
            hints[i], gates[i] = entry["token"], True
        entry["counts"][targets[i]] = entry["counts"].get(targets[i], 0) + 1
        if entry["counts"][targets[i]] > entry["top"]:
            entry["top"], entry["token"] = entry["counts"][targets[i]], targets[i]
    return hints, gates


@pytest.mark.parametrize("seed", range(12))
def test_hints_match_the_records_left_to_right_pass(seed):
    rng = random.Random(seed)
    vocab, width, threshold = rng.randint(2, 6), rng.randint(1, 4), rng.choice([0.3, 0.5, 0.8, 1.0])
    stream = [rng.randrange(vocab) for _ in range(rng.randint(1, 400))]
    inputs, targets = stream[:-1], stream[1:]
    hint, gate = continuation_hints(torch.tensor(inputs), torch.tensor(targets), width, threshold)
    want_hints, want_gates = records_pass(inputs, targets, width, threshold)
    assert gate.tolist() == want_gates
    assert hint.tolist() == [h if g else 0 for h, g in zip(want_hints, want_gates)]
    assert sum(want_gates) > 0 or len(inputs) < 20


def _repetitive_tokens(n: int = 512) -> torch.Tensor:
    """A phrase of 24 random tokens repeated with noise, so that 16-token contexts recur."""
    g = torch.Generator().manual_seed(7)
    phrase = torch.randint(2, VOCAB, (24,), generator=g)
    tokens = phrase.repeat(n // 24 + 2)[: n + 1].clone()
    noise = torch.rand(n + 1, generator=g) < 0.05
    tokens[noise] = torch.randint(2, VOCAB, (int(noise.sum()),), generator=g)
    tokens[0] = 1
    return tokens


def test_the_scored_distribution_sums_to_one_and_is_the_closed_form(monkeypatch):
    """For every window the sliding eval scores under the tilt, the NLL the scorer would sum for each candidate
    target a of the vocabulary: exp(-NLL) sums to 1 over a and is p(a) exp(boost [a = h]) / (1 + p(h) (exp(boost)
    - 1)), p the softmax of the model's own logits."""
    cfg = NgramTiltConfig(enabled=True)  # PR #2135: order 16, boost 2.625, threshold 0.8
    tokens = _repetitive_tokens()
    ctx = with_tilt(_ctx(tokens), cfg)
    seen = []
    honest = NgramTilt.nll

    def record(self, logits, targets, starts):
        seen.append((logits, starts))
        return honest(self, logits, targets, starts)

    monkeypatch.setattr(NgramTilt, "nll", record)
    tilted = evaluate_sliding(_model(), ctx, 16)
    monkeypatch.undo()
    gated = 0
    for raw, starts in seen:
        rows, width, vocab = raw.shape
        scored = torch.stack([ctx.tilt.nll(raw, torch.full((rows, width), a), starts) for a in range(vocab)], -1)
        q = torch.exp(-scored.double())
        assert torch.allclose(q.sum(-1), torch.ones(rows, width, dtype=torch.float64), atol=1e-5)
        positions = (starts[:, None] + torch.arange(width)).clamp(max=len(tokens) - 2)
        hint, gate = ctx.tilt.hint[positions].unsqueeze(-1), ctx.tilt.gate[positions].unsqueeze(-1)
        p = torch.softmax(raw.double(), -1)
        boosted = p * torch.zeros_like(p).scatter(-1, hint, cfg.boost).exp()
        closed = torch.where(gate, boosted / (1 + p.gather(-1, hint) * (math.exp(cfg.boost) - 1)), p)
        assert torch.allclose(q, closed, atol=1e-5)
        gated += int(gate.sum())
    assert gated > 100 and ctx.tilt.summary["gated"] > 100
    plain = evaluate_sliding(_model(), _ctx(tokens), 16)
    assert tilted["tokens"] == plain["tokens"] and tilted["val_loss"] < plain["val_loss"]  # repeats: the tilt helps


def test_a_tilt_whose_gates_stay_shut_scores_like_the_plain_eval():
    tokens = torch.randint(2, VOCAB, (513,), generator=torch.Generator().manual_seed(3))
    tokens[0] = 1
    ctx = with_tilt(_ctx(tokens), NgramTiltConfig(enabled=True))  # no 15-token context recurs in random tokens
    assert ctx.tilt.summary["gated"] == 0
    assert evaluate_sliding(_model(), ctx, 16) == evaluate_sliding(_model(), _ctx(tokens), 16)


def test_the_variants_that_are_not_a_distribution_are_refused_before_work(tmp_path, demo_cache):
    """A gate that reads the target and a boost without the new softmax: one line each, nothing trained."""
    proc = run_golf([*FAST_RUN, "eval=sliding64", "eval.ngram_tilt.enabled=true", "eval.ngram_tilt.gate=word_start",
                     "eval.ngram_tilt.renormalize=false"], tmp_path, demo_cache)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in output, output
    assert "eval.ngram_tilt.gate=word_start asks whether the target token starts a word" in output
    assert "eval.ngram_tilt.renormalize=false boosts a token without taking the softmax again" in output
    [job] = job_dirs(tmp_path)
    assert read_results(job)["error"]["where"] == "validate"  # refused before any training
