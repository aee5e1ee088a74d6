"""Score-first legality of every test-time-training protocol, proven two independent ways:

- a causal probe that knows nothing of golf's ledger: it records the full predicted distribution of every
  position the BPB sums take, in two runs whose val tokens differ from token t on; every scored position
  whose inputs all come before t must get the bit-identical distribution in both runs (condition C1: the
  distribution at p depends only on the tokens before it). Training on a chunk before scoring it, or
  reading one token past the scored range, breaks it;
- the legality ledger, computed from what the scorer summed and what the val stream handed out.
Each injected illegal order is caught by both.
"""

from dataclasses import replace

import pytest
import torch
from test_sliding_eval import VOCAB, _ctx, _model

from golf.config.evaluation import NgramTiltConfig
from golf.config.ttt import DocQueue, LayerLR, LoRAReset, SNRScale, TTTConfig, TTTMode, TTTOptimizer
from golf.eval import scoring
from golf.eval.bpb import BPBAccumulator
from golf.eval.ledger import Ledger
from golf.eval.ngram_tilt import NgramTilt, with_tilt
from golf.eval.sliding import score_windows, sliding_windows
from golf.eval.val_stream import ValStream
from golf.ttt import session
from golf.ttt.stream import chunk_windows
from golf.ttt.training import RangeTrainer, build_optimizer, select_trainable

pytestmark = pytest.mark.usefixtures("single_thread")
BOS = 1


def _cfg(**kw) -> TTTConfig:
    return TTTConfig(**{"name": "sgd", "mode": TTTMode.stream, "chunk_tokens": 128, "epochs": 2, "lr": 0.05,
                        "batch_seqs": 4, **kw})


def _tokens(n: int = 4 * 128 + 1, docs: int = 0) -> torch.Tensor:
    """Random tokens starting with BOS, cut into `docs` documents by BOS at fixed places when asked, two of them
    cut again so that documents differ in length (a length-sorted queue reorders them)."""
    tokens = torch.randint(2, VOCAB, (n,), generator=torch.Generator().manual_seed(3))
    for start in range(0, n - 1, max((n - 1) // docs, 1) if docs else n):
        tokens[start] = BOS
    if docs:
        tokens[[40, 300]] = BOS
    return tokens


PROTOCOLS = {
    "stream_sgd": _cfg(),
    "stream_adamw": _cfg(optimizer=TTTOptimizer.adamw, lr=0.01),
    "discriminative": _cfg(layer_lr=LayerLR.discriminative),
    "eb_adaptive": _cfg(snr_scale=SNRScale.eb_abs, freeze_embeddings=True),
    "lora": _cfg(mode=TTTMode.lora, lora_chunk=32, lora_rank=2, lr=0.05, epochs=1, lora_targets=r"attn\.(c_q|c_v)$"),
    "lora_stream_reset": _cfg(mode=TTTMode.lora, lora_chunk=32, lora_rank=2, lr=0.05, epochs=1,
                              lora_reset=LoRAReset.stream),
    "lora_batched": _cfg(mode=TTTMode.lora, lora_chunk=32, lora_rank=2, lr=0.05, epochs=2, lora_batch_docs=3,
                         lora_queue=DocQueue.length, lora_head=True, lora_targets=r"attn\.c_[qkv]$|\.attn$|\.mlp$"),
    # two global steps, after the queue's second and fourth documents (val order here: the stream probe applies)
    "phased": _cfg(mode=TTTMode.phased_lora, lora_chunk=32, lora_rank=2, lr=0.05, epochs=1, lora_batch_docs=2,
                   phases=2, phase_docs=4, phase_lr=0.05, chunk_tokens=64, batch_seqs=2),
}
# one-token contexts, so that random tokens open many gates
TILT = NgramTiltConfig(enabled=True, order=2, threshold=0.3)
DOCUMENT_MODES = ("lora", "phased_lora")


def _run(cfg: TTTConfig, tokens: torch.Tensor, tilt=None) -> dict:
    return session.test_time_train(_model(), _ctx(tokens, seq_len=64, batch_seqs=8), cfg, 32, seed=5, diagnose=False,
                                   tilt=tilt)


def scored_distributions(protocol, tokens: torch.Tensor, monkeypatch) -> list[tuple[torch.Tensor, ...]]:
    """(inputs, logits, scored mask) of every scoring forward `protocol(model, tokens)` makes: the logits the
    scoring forward computed (the full distribution, not just the realized target's NLL; the n-gram tilt's
    when it tilts them) and which of its columns the BPB sums took (read from `BPBAccumulator.add`, whose
    columns are a slice of the window's)."""
    forwards, masks = [], []
    add = BPBAccumulator.add
    tilt_logits = NgramTilt.logits
    model = _model()
    logits = model.logits

    def record_logits(ids, *head_delta):
        out = logits(ids, *head_delta)
        if torch.is_inference_mode_enabled():
            forwards.append((ids.clone(), out.detach().clone()))
        return out

    def record_tilt(self, raw, starts):
        out = tilt_logits(self, raw, starts)
        if torch.is_inference_mode_enabled():
            forwards[-1] = (forwards[-1][0], out.detach().clone())
        return out

    def record_add(self, nll, inputs, targets, tables, scored=None, target_bytes=None):
        masks.append((inputs.clone(), torch.ones_like(targets, dtype=torch.bool) if scored is None else scored.clone()))
        return add(self, nll, inputs, targets, tables, scored, target_bytes)

    model.logits = record_logits
    with monkeypatch.context() as patch:
        patch.setattr(BPBAccumulator, "add", record_add)
        patch.setattr(NgramTilt, "logits", record_tilt)
        protocol(model, tokens)
    assert len(forwards) == len(masks)
    calls = []
    for (ids, out), (sliced, scored) in zip(forwards, masks):
        width = sliced.size(1)
        lo = next(o for o in range(ids.size(1) - width + 1) if torch.equal(ids[:, o : o + width], sliced))
        full = torch.zeros_like(ids, dtype=torch.bool)
        full[:, lo : lo + width] = scored
        calls.append((ids, out, full))
    return calls


def causal_violations(protocol, tokens: torch.Tensor, t: int, monkeypatch, order: torch.Tensor | None = None,
                      base: list | None = None) -> int:
    """Scored positions p < t whose predicted distribution changed when the tokens from index t on are replaced
    (BOS stays BOS and replaces no other token: document boundaries are public): condition C1 of docs/rules.md,
    the distribution at p depends only on the tokens up to p, checked on the scores the BPB actually summed.
    `order`: each token index's place in the protocol's evaluation order (default: the stream's), so "from t on"
    and "p < t" are read in that order (a document queue: every later document of the queue is replaced too).
    `base`: the unperturbed run's scored_distributions, when already computed."""
    order = torch.arange(tokens.numel()) if order is None else order
    late = order >= t
    other = tokens.clone()
    other[late] = torch.where(tokens[late] == BOS, BOS, (tokens[late] - 2 + 7) % (VOCAB - 2) + 2)
    a = base if base is not None else scored_distributions(protocol, tokens, monkeypatch)
    b = scored_distributions(protocol, other, monkeypatch)
    assert len(a) == len(b) and a, "the two runs must make the same scoring calls"
    bad = 0
    for (xa, la, ma), (_, lb, _) in zip(a, b):
        width = min(la.size(1), lb.size(1))  # batched protocols pad to their longest row: padding is never scored
        for row in range(xa.size(0)):
            start = _window_start(tokens, xa[row])
            if start is not None:
                span = torch.arange(start, min(start + width, tokens.numel()))
                early = order[span] < t  # the row's columns (positions) before t
                changed = (la[row, : len(span)] != lb[row, : len(span)]).any(dim=-1)
                bad += int((changed & early & ma[row, : len(span)]).sum())
    return bad


def _window_start(tokens: torch.Tensor, row: torch.Tensor) -> int | None:
    """Where a scoring row's inputs start in the stream (rows are right-padded with 0, a token the stream never
    holds); None for an empty row."""
    n = int((row != 0).sum())
    if n == 0:
        return None
    found = (tokens.unfold(0, n, 1) == row[:n]).all(dim=1).nonzero()
    assert len(found) == 1, "a scoring row must be one place of the stream"
    return int(found[0])


def _protocol(cfg: TTTConfig | None, tilt=None):
    """A TTT protocol, or with cfg None the sliding eval (stride 32), the tilt applied when given."""
    def run(model, tokens):
        ctx = _ctx(tokens, seq_len=64, batch_seqs=8)
        if cfg is None:
            return scoring.sliding_eval(model, with_tilt(ctx, tilt) if tilt else ctx, 32)
        return session.test_time_train(model, ctx, cfg, 32, 5, diagnose=False, tilt=tilt)

    return run


def queue_order(tokens: torch.Tensor, batch_docs: int) -> torch.Tensor:
    """Each token index's place when the documents of the 512 predictions are taken from PR #1530's length
    queue (by length, ties by place; batches of `batch_docs`; longest batch first): written out here
    independently of golf.ttt.documents."""
    n = tokens.numel() - 1
    starts = [i for i in range(n) if tokens[i] == BOS]
    docs = list(zip(starts, [*starts[1:], n]))
    by_length = sorted(docs, key=lambda d: (d[1] - d[0], d[0]))
    batches = [by_length[i : i + batch_docs] for i in range(0, len(by_length), batch_docs)]
    batches.sort(key=lambda b: -(b[-1][1] - b[-1][0]))
    order = torch.arange(tokens.numel())
    place = 0
    for s, e in (doc for batch in batches for doc in batch):
        order[s:e] = torch.arange(place, place + e - s)
        place += e - s
    return order


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_every_protocol_passes_the_causal_probe_and_its_ledger(name, monkeypatch):
    cfg = PROTOCOLS[name]
    tokens = _tokens(docs=4 if cfg.mode in DOCUMENT_MODES else 0)
    out = _run(cfg, tokens)
    assert all(c["pass"] for c in out["checks"].values()), out["checks"]
    assert out["tokens"] == 512
    for t in (129, 200, 257, 384):  # chunk starts, a chunk's middle, the last chunk
        assert causal_violations(_protocol(cfg), tokens, t, monkeypatch) == 0, t


@pytest.mark.parametrize("name", ["sliding", "stream_sgd", "lora", "phased"])
def test_the_ngram_tilt_passes_the_causal_probe_with_every_protocol(name, monkeypatch):
    """The tilt walks the stream for the sliding eval and stream TTT, the queue (val order here) for the document
    protocols: the tilted distributions before t never see a token from t on."""
    cfg = PROTOCOLS.get(name)
    tokens = _tokens(docs=4 if cfg is not None and cfg.mode in DOCUMENT_MODES else 0)
    out = _protocol(cfg, TILT)(_model(), tokens)
    assert all(c["pass"] for c in out["checks"].values()), out["checks"]
    if cfg is not None:
        assert out["ngram_tilt"]["gated"] > 100  # the probe below sees tilted positions
    base = scored_distributions(_protocol(cfg, TILT), tokens, monkeypatch)
    for t in (129, 200, 257, 384):
        assert causal_violations(_protocol(cfg, TILT), tokens, t, monkeypatch, base=base) == 0, t


QUEUED = {"lora_batched_tilt": (PROTOCOLS["lora_batched"], TILT),
          "phased_length": (replace(PROTOCOLS["phased"], lora_queue=DocQueue.length), None),
          "phased_length_tilt": (replace(PROTOCOLS["phased"], lora_queue=DocQueue.length), TILT)}


@pytest.mark.parametrize("name", list(QUEUED))
def test_length_queues_pass_the_causal_probe_in_queue_order(name, monkeypatch):
    """With a length-sorted queue, what a score may depend on is what the queue put before it: the global steps
    train on the queue's first documents and the tilt walks the queue. Replacing every token from a place of the
    queue on (the rest of a document and every later document) leaves every earlier score bit-identical."""
    cfg, tilt = QUEUED[name]
    tokens = _tokens(docs=4)
    out = _run(cfg, tokens, tilt)
    assert all(c["pass"] for c in out["checks"].values()), out["checks"]
    order = queue_order(tokens, cfg.lora_batch_docs)
    base = scored_distributions(_protocol(cfg, tilt), tokens, monkeypatch)
    for t in (88, 168, 300, 400):  # places of the queue: document starts and middles, whatever the batch size
        assert causal_violations(_protocol(cfg, tilt), tokens, t, monkeypatch, order, base) == 0, t


def test_a_global_step_before_its_documents_are_scored_is_caught(monkeypatch):
    """Phased TTT pausing one batch early: its global step trains on documents the queue has not scored yet."""
    import golf.ttt.phased as phased

    cfg = replace(PROTOCOLS["phased"], lora_queue=DocQueue.length)
    honest = phased.phase_pauses
    monkeypatch.setattr(phased, "phase_pauses", lambda *a: {end - 1: c for end, c in honest(*a).items()})
    tokens = _tokens(docs=4)
    out = _run(cfg, tokens)
    assert not out["checks"]["score_before_update"]["pass"]
    order = queue_order(tokens, cfg.lora_batch_docs)
    assert causal_violations(_protocol(cfg), tokens, 300, monkeypatch, order) > 0


def test_a_tilt_whose_context_holds_the_target_is_caught(monkeypatch):
    """The tilt hashing each position's target into its context (PR #1420's causality bug, in the token expert)."""
    import golf.eval.ngram_tilt as ngram_tilt

    honest = ngram_tilt.continuation_hints
    monkeypatch.setattr(ngram_tilt, "continuation_hints", lambda x, y, *a: honest(y, y, *a))
    tokens = _tokens()
    assert sum(causal_violations(_protocol(None, TILT), tokens, t, monkeypatch) for t in (129, 257)) > 0


def test_the_legal_stream_loop_reads_exactly_the_scored_chunks():
    out = _run(_cfg(snr_scale=SNRScale.eb_abs), _tokens())
    checks = out["checks"]
    # 3 trained chunks x 2 epochs x 2 sequences of 64 inputs + 1 target; the stream's leading BOS is public
    assert checks["score_before_update"]["value"]["tokens_read"] == 3 * 2 * 2 * 65 - 2
    assert set(out["snr"]["mean"]) == {"eb", "eb_abs", "eb_clipped", "eb_abs_clipped"}
    assert set(out["snr"]["mean"]["eb_abs"]) == {"layer_00", "layer_01", "tok_emb", "skip_weights"}


def test_first_chunk_scores_like_the_plain_eval():
    """The first chunk is scored before any update, so it matches the plain eval exactly."""
    tokens = _tokens()
    first = chunk_windows(sliding_windows(512, 64, 32), 128)[0]
    plain = BPBAccumulator(torch.device("cpu"))
    score_windows(_model(), first, _ctx(tokens), plain)
    adapted = _run(_cfg(), tokens[:129])
    assert adapted["val_loss"] == pytest.approx(plain.result()["val_loss"], rel=1e-12)


def _train_then_score(model, tokens, cfg=_cfg()) -> dict:
    """A deliberately illegal protocol: each chunk trains on its tokens, then scores them."""
    ctx = _ctx(tokens, ledger=True)
    groups = select_trainable(model, cfg)
    trainer = RangeTrainer(model, model, groups, build_optimizer(groups, cfg), cfg, 64, ctx)
    acc = BPBAccumulator(torch.device("cpu"))
    for windows in chunk_windows(sliding_windows(512, 64, 32), cfg.chunk_tokens):
        trainer.train_range(ctx.val, windows[0].scored[0], windows[-1].scored[1], cfg.epochs)
        ctx.ledger.tick()
        score_windows(model, windows, ctx, acc)
        ctx.ledger.tick()
    return ctx.ledger.checks(acc.result()["tokens"])


def test_training_before_scoring_is_caught_by_the_probe_and_the_ledger(monkeypatch):
    checks = _train_then_score(_model(), _tokens())
    assert not checks["score_before_update"]["pass"]
    # every read: 4 chunks x 2 epochs x 2 sequences, the first of tokens 1..64 (token 0, BOS, is public)
    assert checks["score_before_update"]["value"]["violations"] == 16
    assert checks["score_before_update"]["value"]["first_violation"]["tokens"] == [1, 65]
    assert checks["each_token_scored_once"]["pass"]  # the other checks do not hide the violation
    assert causal_violations(_train_then_score, _tokens(), 200, monkeypatch) > 0


@pytest.mark.parametrize("name", ["stream_sgd", "lora"])
def test_reading_one_token_past_the_scored_range_is_caught(monkeypatch, name):
    """An adaptation that takes one more target than was scored (train_range(a, b + 1), val[s:e + 2])."""
    cfg = PROTOCOLS[name]
    tokens = _tokens(docs=4 if cfg.mode == "lora" else 0)
    honest = ValStream.read

    def one_more(self, start, end, purpose="update"):
        return honest(self, start, end + 1, purpose)

    monkeypatch.setattr(ValStream, "read", one_more)
    out = _run(cfg, tokens)
    assert not out["checks"]["score_before_update"]["pass"]
    t = 129 if cfg.mode == "stream" else 33  # the first token after the first trained range
    assert causal_violations(_protocol(cfg), tokens, t, monkeypatch) > 0


def test_a_protocol_cannot_hide_its_reads(monkeypatch):
    """Stream TTT records what RangeTrainer read, not what the loop says it trains on."""
    import golf.ttt.training as training

    honest = training._sequences
    monkeypatch.setattr(training, "_sequences", lambda a, b, seq_len: honest(a, b + 64, seq_len))
    out = _run(_cfg(), _tokens())
    assert not out["checks"]["score_before_update"]["pass"]


def test_multi_epoch_rescoring_is_caught():
    """Score-then-train over the whole stream twice, keeping both scores (ruled illegal, PR #568)."""
    ledger = Ledger(256)
    for _ in range(2):
        for a in range(0, 256, 128):
            ledger.record("score", a, a + 128)
            ledger.tick()
            ledger.record("update", a, a + 129)
            ledger.tick()
    checks = ledger.checks(512)
    assert not checks["score_before_update"]["pass"]  # the second pass scores tokens the first pass trained on
    assert not checks["each_token_scored_once"]["pass"]
    assert checks["each_token_scored_once"]["value"]["rescored"] == 256
    assert not checks["single_pass"]["pass"]
    assert checks["single_pass"]["value"]["backward_steps"] == 1
    assert checks["single_pass"]["value"]["late_updates"] == 1


def test_an_update_in_the_same_phase_as_its_score_is_a_violation():
    """Reading a token in the phase that scores it is not score-first (the clock must have moved on)."""
    ledger = Ledger(128)
    ledger.record("score", 0, 128)
    ledger.record("update", 0, 129)
    assert not ledger.checks(128)["score_before_update"]["pass"]
    ledger.tick()
    ledger.record("update", 0, 129)
    assert ledger.checks(128)["score_before_update"]["value"]["violations"] == 1  # only the same-phase read


def test_token_zero_is_public_and_one_token_past_is_not():
    ledger = Ledger(100)
    ledger.record("score", 0, 50)
    ledger.tick()
    ledger.record("update", 0, 51)  # tokens 0..50: token 50 is the target of the scored position 49
    assert ledger.checks(50)["score_before_update"]["pass"]
    ledger.record("update", 0, 52)  # token 51 is the target of position 50, not scored yet
    assert not ledger.checks(50)["score_before_update"]["pass"]


def test_late_update_and_calibration_and_gaps_are_caught():
    ledger = Ledger(300)
    ledger.record("score", 0, 100)
    ledger.tick()
    ledger.record("score", 100, 200)
    ledger.tick()
    ledger.record("update", 0, 101)  # after a later range was scored: not a single pass
    ledger.record("calibration", 200, 250)
    checks = ledger.checks(200)
    assert checks["single_pass"]["value"] == {"backward_steps": 0, "late_updates": 1}
    assert checks["no_val_in_calibration"] == {"pass": False, "value": 50}
    assert not checks["score_before_update"]["pass"]  # the calibration read unscored tokens
    assert checks["each_token_scored_once"]["value"]["unscored"] == 100


def test_per_rank_streams_are_single_pass_each():
    """Document-parallel protocols: each rank moves left to right on its own documents (a document's first
    token is its BOS, public, so its reads start after it)."""
    events = []
    for rank, (lo, hi) in enumerate([(0, 100), (100, 200)]):
        ledger = Ledger(200, rank)
        for a in range(lo, hi, 50):
            ledger.record("score", a, a + 50)
            ledger.tick()
            ledger.record("update", a + (a == lo), a + 51)
            ledger.tick()
        events += ledger.events
    checks = Ledger(200, 0, events).checks(200)
    assert all(c["pass"] for c in checks.values()), checks


def test_compiled_ttt_traces_one_graph_and_matches_eager(monkeypatch):
    """ttt.compile: fullgraph tracing of the training forward after inference-mode scoring (no inference
    tensors may leak into the graph); the compiled loop gives the eager loop's numbers."""
    import golf.utils.compile as compilation

    monkeypatch.setattr(compilation, "BACKEND", "aot_eager")
    tokens = _tokens()
    eager = _run(_cfg(), tokens)
    compiled = _run(_cfg(compile=True), tokens)
    assert compiled["val_loss"] == pytest.approx(eager["val_loss"], rel=1e-5)
    frozen = _run(_cfg(lr=0.0), tokens)
    assert compiled["val_loss"] != pytest.approx(frozen["val_loss"], rel=1e-6)  # the compiled updates did act
    assert all(c["pass"] for c in compiled["checks"].values())
