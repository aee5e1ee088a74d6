"""The peer benchmark against the official script (benchmarks.peer, benchmarks.reference, benchmarks.peer_script).

The official train_gpt.py is the oracle here, used by path: its own Hyperparameters class reads back the
environment golf writes for a whole-script run, its own log format strings produce the lines the parser reads,
and its own classes train the official side. Tests that need the file skip, saying so, where it is absent.
"""

import argparse
import ast
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import job_dirs, read_results

from benchmarks import common, peer, peer_pool
from benchmarks.common import load_config
from benchmarks.peer_script import (
    OFFICIAL_PREQUANT,
    OFFICIAL_ROUNDTRIP,
    golf_snr_steps,
    golf_times,
    official_times,
    step_times,
)
from benchmarks.reference import (
    check_official_config,
    find_reference,
    load_reference,
    official_data_dir,
    official_env,
)
from golf.data.loader import DistributedTokenLoader, load_validation_tokens
from golf.errors import ConfigError

TOY = ["arch=tiny", "arch.num_layers=2", "arch.model_dim=64", "arch.num_heads=2", "arch.num_kv_heads=1",
       "data=demo", "train.seq_len=64", "train.batch_tokens=1024", "train.grad_accum_steps=1",
       "train.warmup_steps=1", "train.warmdown_iters=0", "train.threads=1", "eval.batch_tokens=4096",
       "eval.max_seqs=32", "logger=none"]  # no warmdown: full learning rates, so 3 steps move the weights


@pytest.fixture(scope="module")
def reference_path() -> Path:
    path = find_reference()
    if path is None or not path.is_file():
        pytest.skip("no official train_gpt.py: set $GOLF_REFERENCE or copy it to .reference/")
    return path


@pytest.fixture
def toy_cache(demo_cache, monkeypatch):
    monkeypatch.setenv("GOLF_CACHE", str(demo_cache))


def test_configs_the_official_script_cannot_train_are_refused_by_name(toy_cache):
    check_official_config(load_config(["+experiment=cpu_demo"]))  # the baseline family passes
    with pytest.raises(ConfigError, match=r"arch\.xsa_layers, arch\.value_embed_dim.*arch\.parallel_residual"):
        check_official_config(load_config(["+experiment=cpu_demo", "arch=recur_parallel_cpu"]))
    with pytest.raises(ConfigError, match=r": optimizer\.muon_coeffs, train\.ema_decay differ from the baseline"):
        check_official_config(load_config(["+experiment=cpu_demo", "optimizer.muon_coeffs=polar_express",
                                           "train.ema_decay=0.99"]))


def test_the_official_script_reads_back_the_config_from_its_environment(reference_path, toy_cache, monkeypatch,
                                                                        tmp_path):
    cfg = load_config(["+experiment=cpu_demo", "arch.tie_embeddings=false", "optimizer.matrix_lr=0.03",
                       "train.warmdown_iters=7", "seed=5"])
    data_dir = official_data_dir(cfg, tmp_path / "data")
    for key, value in official_env(cfg, data_dir, "run", 50).items():
        monkeypatch.setenv(key, value)
    ref = load_reference(reference_path)
    hp = ref.Hyperparameters  # its class body reads the environment at import
    a, o, t = cfg.arch, cfg.optimizer, cfg.train
    assert (hp.data_path, hp.tokenizer_path, hp.seed, hp.train_log_every) == (str(data_dir), cfg.data.tokenizer_path,
                                                                               5, 50)
    # Its loaders read golf's shards through the linked names, token for token.
    official_x, _ = ref.DistributedTokenLoader(hp.train_files, 0, 1, torch.device("cpu")).next_batch(8192, 256, 1)
    golf_x, _ = DistributedTokenLoader(cfg.data.train_pattern, 0, 1).next_batch(8192, 256, 1)
    assert torch.equal(official_x, golf_x)
    assert torch.equal(ref.load_validation_tokens(hp.val_files, 256).long(),
                       load_validation_tokens(cfg.data.val_pattern, 256).long())
    assert (hp.iterations, hp.warmup_steps, hp.warmdown_iters, hp.train_batch_tokens, hp.train_seq_len) == (
        t.iterations, t.warmup_steps, 7, t.batch_tokens, t.seq_len)
    assert (hp.max_wallclock_seconds, hp.val_loss_every, hp.val_batch_size) == (0.0, 0, cfg.eval.batch_tokens)
    assert (hp.vocab_size, hp.num_layers, hp.model_dim, hp.num_heads, hp.num_kv_heads, hp.mlp_mult) == (
        a.vocab_size, a.num_layers, a.model_dim, a.num_heads, a.num_kv_heads, a.mlp_mult)
    assert (hp.tie_embeddings, hp.tied_embed_init_std, hp.logit_softcap, hp.rope_base, hp.qk_gain_init) == (
        False, a.tied_embed_init_std, a.logit_softcap, a.rope_base, a.qk_gain_init)
    assert (hp.embed_lr, hp.head_lr, hp.tied_embed_lr, hp.matrix_lr, hp.scalar_lr) == (
        o.embed_lr, o.head_lr, o.tied_embed_lr, 0.03, o.scalar_lr)
    assert (hp.muon_momentum, hp.muon_backend_steps, hp.muon_momentum_warmup_start, hp.muon_momentum_warmup_steps,
            hp.beta1, hp.beta2, hp.adam_eps, hp.grad_clip_norm) == (
        o.muon_momentum, o.muon_backend_steps, o.muon_momentum_warmup_start, o.muon_momentum_warmup_steps,
        o.beta1, o.beta2, o.adam_eps, o.grad_clip_norm)


def _official_line(reference_path: Path, marker: str, **names) -> str:
    """A log line exactly as the official script writes it: its own f-string (the log0 call holding `marker`),
    evaluated with the given values."""
    for node in ast.walk(ast.parse(reference_path.read_text())):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "log0" and node.args
                and isinstance(node.args[0], ast.JoinedStr) and marker in ast.unparse(node.args[0])):
            return eval(compile(ast.Expression(node.args[0]), "official log line", "eval"), {}, names)
    raise AssertionError(f"no log0 f-string with {marker!r} in {reference_path}")


def test_official_log_lines_parse_into_step_times_and_scores(reference_path):
    args = SimpleNamespace(iterations=40)
    lines = [_official_line(reference_path, "train_loss:", step=step, args=args, train_loss=torch.tensor(3.25),
                            approx_training_time_ms=100.0 * step + 900.0) for step in [*range(1, 11), 40]]
    lines.append(_official_line(reference_path, "val_bpb:{val_bpb", step=40, args=args, val_loss=2.5, val_bpb=1.23456,
                                training_time_ms=4900.0))
    lines.append(_official_line(reference_path, "roundtrip_exact", q_val_loss=2.6, q_val_bpb=1.2512345678))
    log = "\n".join(["    f\"step:{step}/{args.iterations} train_loss:...\"", *lines])  # its source is in the log
    times = official_times(log)
    assert sorted(times) == [*range(1, 11), 40] and times[40] == 4900.0
    assert step_times(times) == (pytest.approx(4900.0 / 40), pytest.approx(100.0))  # steady: (4900 - 1900) / 30
    assert float(OFFICIAL_PREQUANT.findall(log)[-1]) == 1.2346  # printed to 4 decimals
    assert float(OFFICIAL_ROUNDTRIP.search(log).group(1)) == 1.25123457


def test_golf_metrics_give_step_times(tiny_sweep):
    """From a real job's metrics.jsonl (the shared tiny sweep: 6 steps, logged every step up to 10)."""
    job = next(d for d in job_dirs(tiny_sweep) if read_results(d)["status"] == "completed")
    times = golf_times(job / "metrics.jsonl")
    assert sorted(times) == [1, 2, 3, 4, 5, 6]
    assert all(times[s] < times[s + 1] for s in range(1, 6))
    average, steady = step_times(times)
    assert average == pytest.approx(times[6] / 6) and math.isnan(steady)  # no steady span before step 10
    # golf-only work inside its training clock: the gradient SNR at every logged step
    assert golf_snr_steps(job / "metrics.jsonl") == [1, 2, 3, 4, 5, 6]


def test_peer_trains_both_sides_to_the_same_bpb(reference_path, toy_cache, monkeypatch, tmp_path):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    args = argparse.Namespace(ref=str(reference_path), steps=3, repeats=2, precision="bf16", parts="model")
    peer.run(args, TOY)
    [row] = [json.loads(line) for line in (tmp_path / "peer.jsonl").read_text().splitlines()]
    assert (row["precision"], row["steps"], row["repeats"]) == ("bf16", 3, 2)
    for side in ("golf", "official"):
        assert len(row["runs_ms"][side]) == 2 and min(row["runs_cpu_ms"][side]) > 0
        assert row["val_bpb"][side][0] == row["val_bpb"][side][1]  # every run restarts from the same state
    # The official side steps Adam fused (its main() does), golf unfused on CPU: rounding apart, the same
    # training (-2e-4 here); the same optimizer split matters 20x more (Muon on resid_mix too: +4e-3).
    assert abs(row["delta_bpb"]) < 1e-3
    assert row["golf_over_official"] == pytest.approx(row["golf_ms_per_step"] / row["official_ms_per_step"], rel=1e-3)
    # golf's per-log-step SNR is timed apart (no timed run logs): one micro-batch's worth, less than a step
    assert 0 < row["golf_snr_ms_per_log_step"] < row["golf_ms_per_step"]
    assert "| bf16 | False | 1 |" in (tmp_path / "peer.md").read_text()


def _peer_row(golf_ms: list[float], official_ms: list[float], precision: str = "bf16") -> dict:
    return {"device": "cpu (test)", "precision": precision, "arch": "baseline 4x128", "seq_len": 256,
            "batch_tokens": 8192, "runs_cpu_ms": {"golf": golf_ms, "official": official_ms},
            "runs_ms": {"golf": [2 * v for v in golf_ms], "official": official_ms}}


def test_peer_runs_pool_into_a_geometric_ratio_with_its_interval(tmp_path, capsys):
    # pairs 1.21 and 1/1.21 (geometric mean exactly 1) and 2.0 in a second row of the same config
    rows = [_peer_row([121.0, 100.0], [100.0, 121.0]), _peer_row([200.0], [100.0]), _peer_row([5.0], [1.0], "fp32")]
    bf16, fp32 = peer_pool.pool(rows)
    assert (bf16["rows"], bf16["pairs"], fp32["pairs"]) == (2, 3, 1)
    assert bf16["cpu"][0] == pytest.approx(2.0 ** (1 / 3))
    assert bf16["cpu"][1] == pytest.approx(1 / 1.21) and bf16["cpu"][2] == pytest.approx(2.0)
    assert bf16["wall"][0] == pytest.approx(2 * 2.0 ** (1 / 3)) and fp32["cpu"] == pytest.approx((5.0, 5.0, 5.0))
    path = tmp_path / "peer.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    peer_pool.main([str(path)])
    row = "| cpu (test) | baseline 4x128 | 256 | 8,192 | bf16 | 2 | 3 | 1.260 (0.826-2.000) |"
    assert row in capsys.readouterr().out
