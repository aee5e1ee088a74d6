"""The legality ledger: the legal score-first loop passes, illegal orders are caught and named."""

import pytest
import torch
from test_sliding_eval import VOCAB, _model, _tables

from golf.config.schema import SNRScale, TTTConfig, TTTMode
from golf.eval.bpb import BPBAccumulator
from golf.eval.sliding import score_windows, sliding_windows
from golf.ttt.ledger import Ledger
from golf.ttt.stream import chunk_windows, run_stream_ttt
from golf.ttt.training import RangeTrainer, build_optimizer, select_trainable
from golf.utils.runtime import Runtime

CPU = torch.device("cpu")
RT = Runtime(rank=0, local_rank=0, world_size=1, device=CPU, autocast_dtype=None, compile=False)


def _cfg(**kw) -> TTTConfig:
    return TTTConfig(**{"name": "sgd", "mode": TTTMode.stream, "chunk_tokens": 128, "epochs": 2, "lr": 0.01,
                        "batch_seqs": 4, **kw})


def _tokens(n: int = 4 * 128 + 1) -> torch.Tensor:
    return torch.randint(2, VOCAB, (n,), generator=torch.Generator().manual_seed(3))


def test_legal_stream_loop_passes_every_check(single_thread):
    out = run_stream_ttt(_model(), _tokens(), _tables(), 64, 32, 8, _cfg(snr_scale=SNRScale.eb_abs), RT)
    checks = out["ledger"].checks()
    assert all(c["pass"] for c in checks.values()), checks
    assert out["tokens"] == 512 and out["chunks"] == 4
    assert checks["score_before_update"]["value"]["uses"] == 6  # update + stat for each of the 3 trained chunks
    assert set(out["snr"]["mean"]) == {"eb", "eb_abs", "eb_clipped", "eb_abs_clipped"}
    assert set(out["snr"]["mean"]["eb_abs"]) == {"layer_00", "layer_01", "tok_emb", "skip_weights"}


def test_ttt_changes_the_score_only_through_scored_tokens(single_thread):
    """The first chunk is scored before any update, so it matches the plain eval exactly."""
    tokens, tables = _tokens(), _tables()
    first = chunk_windows(sliding_windows(512, 64, 32), 128)[0]
    plain = BPBAccumulator(CPU)
    score_windows(_model(), first, tokens, tables, 64, 8, plain, CPU, None)
    cfg = _cfg()
    adapted = run_stream_ttt(_model(), tokens[:129], tables, 64, 32, 8, cfg, RT)
    assert adapted["val_loss"] == pytest.approx(plain.result()["val_loss"], rel=1e-12)


def _illegal_update_then_score(model, tokens, tables, cfg) -> Ledger:
    """A deliberately illegal protocol: each chunk trains on its tokens, then scores them."""
    groups = select_trainable(model, cfg)
    trainer = RangeTrainer(model, model, groups, build_optimizer(groups, cfg), cfg, 64, RT)
    ledger, acc = Ledger(512), BPBAccumulator(CPU)
    for windows in chunk_windows(sliding_windows(512, 64, 32), cfg.chunk_tokens):
        a, b = windows[0].scored[0], windows[-1].scored[1]
        trainer.train_range(tokens, a, b, cfg.epochs)
        ledger.record("update", a, b)
        ledger.tick()
        score_windows(model, windows, tokens, tables, 64, 8, acc, CPU, None, ledger)
        ledger.tick()
    return ledger


def test_update_before_score_is_caught(single_thread):
    checks = _illegal_update_then_score(_model(), _tokens(), _tables(), _cfg()).checks()
    assert not checks["score_before_update"]["pass"]
    assert checks["score_before_update"]["value"]["violations"] == 4
    assert checks["score_before_update"]["value"]["first_violation"]["positions"] == [0, 128]
    assert checks["each_token_scored_once"]["pass"]  # the other checks do not hide the violation


def test_multi_epoch_rescoring_is_caught():
    """Score-then-train over the whole stream twice, keeping both scores (ruled illegal, PR #568)."""
    ledger = Ledger(256)
    for _ in range(2):
        for a in range(0, 256, 128):
            ledger.record("score", a, a + 128)
            ledger.tick()
            ledger.record("update", a, a + 128)
            ledger.tick()
    checks = ledger.checks()
    assert not checks["score_before_update"]["pass"]  # the second scores come after updates on those tokens
    assert not checks["each_token_scored_once"]["pass"]
    assert checks["each_token_scored_once"]["value"]["rescored"] == 256
    assert not checks["single_pass"]["pass"]
    assert checks["single_pass"]["value"]["backward_steps"] == 1
    assert checks["single_pass"]["value"]["late_updates"] == 1


def test_late_update_and_calibration_and_gaps_are_caught():
    ledger = Ledger(300)
    ledger.record("score", 0, 100)
    ledger.tick()
    ledger.record("score", 100, 200)
    ledger.tick()
    ledger.record("update", 0, 100)  # after a later range was scored: not a single pass
    ledger.record("calibration", 200, 250)
    checks = ledger.checks()
    assert checks["score_before_update"]["pass"]
    assert checks["single_pass"]["value"] == {"backward_steps": 0, "late_updates": 1}
    assert checks["no_val_in_calibration"] == {"pass": False, "value": 50}
    assert checks["each_token_scored_once"]["value"]["unscored"] == 100


def test_per_rank_streams_are_single_pass_each():
    """Document-parallel protocols: each rank moves left to right on its own documents."""
    events = []
    for rank, (lo, hi) in enumerate([(0, 100), (100, 200)]):
        ledger = Ledger(200, rank)
        for a in range(lo, hi, 50):
            ledger.record("score", a, a + 50)
            ledger.tick()
            ledger.record("update", a, a + 50)
            ledger.tick()
        events += ledger.events
    checks = Ledger(200, 0, events).checks()
    assert all(c["pass"] for c in checks.values()), checks


def test_compiled_ttt_traces_one_graph_and_matches_eager(single_thread, monkeypatch):
    """ttt.compile: fullgraph tracing of the training forward after inference-mode scoring (no inference
    tensors may leak into the graph); the compiled loop gives the eager loop's numbers."""
    import golf.utils.compile as compilation

    monkeypatch.setattr(compilation, "BACKEND", "aot_eager")
    tokens, tables = _tokens(), _tables()
    eager = run_stream_ttt(_model(), tokens, tables, 64, 32, 8, _cfg(), RT)
    compiled = run_stream_ttt(_model(), tokens, tables, 64, 32, 8, _cfg(compile=True), RT)
    assert compiled["val_loss"] == pytest.approx(eager["val_loss"], rel=1e-5)
    frozen = run_stream_ttt(_model(), tokens, tables, 64, 32, 8, _cfg(lr=0.0), RT)
    assert compiled["val_loss"] != pytest.approx(frozen["val_loss"], rel=1e-6)  # the compiled updates did act
    assert all(c["pass"] for c in compiled["ledger"].checks().values())
