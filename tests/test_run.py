"""Whole runs through the real CLI: outputs, the artifact round trip, determinism, torchrun with 2
gloo processes, a real offline W&B run read back, and multirun sweeps."""

import json
import math
import subprocess
import sys

import torch
from conftest import FAST_RUN, job_dirs, read_results, run_golf

from golf.config.arch import ArchConfig
from golf.data.loader import load_validation_tokens
from golf.data.tokenizer import load_tokenizer
from golf.eval.bpb import build_byte_tables
from golf.eval.context import EvalContext
from golf.eval.full import evaluate_full
from golf.eval.val_stream import ValStream
from golf.models.registry import load_model


def _completed_job(proc, out):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [job] = job_dirs(out)
    results = read_results(job)
    assert results["status"] == "completed", results.get("error")
    return job, results


def _train_losses(job):
    lines = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train/loss"]) for r in lines if "train/loss" in r]


def test_run_writes_every_output_and_scores_the_artifact(tmp_path, demo_cache):
    proc = run_golf(FAST_RUN, tmp_path, demo_cache)
    job, results = _completed_job(proc, tmp_path)
    for name in ("config.yaml", "overrides.txt", "env.json", "train.log", "metrics.jsonl", ".hydra/config.yaml"):
        assert (job / name).is_file(), name
    assert "golf | val_bpb" in proc.stdout
    assert "tok/s" in proc.stdout and "ETA" in proc.stdout and "expected training time: 6 steps x" in proc.stdout

    art = results["artifact"]
    path = job / art["path"]
    assert art["bytes_model"] == path.stat().st_size
    assert art["bytes_total"] == art["bytes_model"] + art["bytes_code"]
    assert art["bytes_code"] == (job / "train_gpt.py").stat().st_size  # the run's record script
    assert results["record"]["bytes"] == art["bytes_code"] and "golf.pipeline" in results["record"]["modules"]
    assert art["headroom_bytes"] == 16_000_000 - art["bytes_total"]
    assert results["choices"]["arch"] == "tiny" and results["seed"] == 1337
    assert results["metrics"]["steps"] == 6 and math.isfinite(results["metrics"]["val_bpb_prequant"])

    # The headline number is exactly what the artifact file on disk scores, recomputed here.
    cfg = json.loads(json.dumps(read_results(job)["data"]))
    root = cfg["root"]
    sp = load_tokenizer(f"{root}/tokenizer.model")
    val = load_validation_tokens(f"{root}/demo_val_*.bin", 64)
    model = load_model(path, torch.device("cpu"), arch_type=ArchConfig)
    ctx = EvalContext(ValStream(val), build_byte_tables(sp, 1024), 64, 1, 8192 // 64, max_seqs=48)
    again = evaluate_full(model, ctx)
    assert again["val_bpb"] == results["metrics"]["val_bpb"]
    assert again["tokens"] == 48 * 64
    assert results["compliance"]["checks"]["full_validation_split"]["pass"] is False  # eval.max_seqs=48


def test_same_seed_same_losses(tmp_path, demo_cache):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    job_a, res_a = _completed_job(run_golf(FAST_RUN, first, demo_cache), first)
    job_b, res_b = _completed_job(run_golf(FAST_RUN, second, demo_cache), second)
    assert _train_losses(job_a) == _train_losses(job_b)
    assert res_a["metrics"]["val_bpb"] == res_b["metrics"]["val_bpb"]
    assert res_a["artifact"]["sha256"] == res_b["artifact"]["sha256"]


def test_torchrun_two_gloo_ranks_one_job_one_wandb_run(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "launcher=torchrun", "launcher.nproc=2", "logger=wandb", "logger.mode=offline"],
                    tmp_path, demo_cache, env={"WANDB_MODE": "offline"})
    job, results = _completed_job(proc, tmp_path)
    ranks = results["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["val_bpb"] == ranks[1]["val_bpb"] == results["metrics"]["val_bpb"]
    assert ranks[0]["weights_sum"] == ranks[1]["weights_sum"]
    assert len(list((job / "wandb").glob("offline-run-*"))) == 1


def test_wandb_offline_run_reads_back_equal_to_results(tmp_path, demo_cache):
    proc = run_golf([*FAST_RUN, "logger=wandb", "logger.mode=offline"], tmp_path, demo_cache,
                    env={"WANDB_MODE": "offline"})
    job, results = _completed_job(proc, tmp_path)
    assert results["wandb"]["mode"] == "offline"
    [run_dir] = (job / "wandb").glob("offline-run-*")
    inspected = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json", str(run_dir)],
                               capture_output=True, text=True, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    summary = json.loads(inspected.stdout)["summary"]
    assert summary["final/val_bpb"] == results["metrics"]["val_bpb"]
    assert summary["final/bytes_total"] == results["artifact"]["bytes_total"]
    assert summary["val/bpb"] == results["metrics"]["val_bpb_prequant"]  # val/* is the periodic validation
    assert summary["eval/bpb_roundtrip"] == results["metrics"]["val_bpb"]


def test_multirun_three_seeds(tmp_path, demo_cache):
    proc = run_golf(["-m", "+sweep=seeds3", *FAST_RUN], tmp_path, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_dirs(tmp_path)
    assert len(jobs) == 3
    runs = [read_results(job) for job in jobs]
    assert sorted(r["seed"] for r in runs) == [42, 1337, 2025]
    assert all(r["status"] == "completed" and r["sweep"]["name"] == "seeds3" for r in runs)
    assert len({r["metrics"]["val_bpb"] for r in runs}) == 3


def test_multirun_failure_makes_the_parent_fail(tmp_path, demo_cache):
    proc = run_golf(["-m", *FAST_RUN, "arch.num_kv_heads=1,3"], tmp_path, demo_cache)
    assert proc.returncode != 0
    statuses = sorted(read_results(job)["status"] for job in job_dirs(tmp_path))
    assert statuses == ["completed", "failed"]
