"""Shared fixtures: a session-wide demo dataset cache and a runner for the real CLI."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from optional_assets import pytest_terminal_summary  # noqa: F401  (registers the hook: what skipped and why)

REPO = Path(__file__).resolve().parents[1]

# A model and schedule small enough that a whole run (train, quantize, reload, score) takes seconds.
FAST_RUN = [
    "arch=tiny", "arch.num_layers=2", "arch.model_dim=64", "arch.num_heads=2", "arch.num_kv_heads=1",
    "train.iterations=6", "train.batch_tokens=2048", "train.seq_len=64", "train.grad_accum_steps=1",
    "train.warmup_steps=2", "train.warmdown_iters=3", "train.val_every=3", "train.log_every=2",
    "eval.batch_tokens=8192", "eval.max_seqs=48", "budget=unlimited", "logger=none",
]


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch, tmp_path):
    # No test talks to the W&B service; the one offline round trip sets logger.mode itself.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for unit tests of tiny models: threads buy nothing there, and on a busy
    2-core machine every parallel op waits for a descheduled thread (20x slowdowns were measured)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    from golf.data.demo import ensure_demo

    cache = tmp_path_factory.mktemp("golf_cache")
    ensure_demo(cache)
    return cache


def run_golf(args: list[str], out: Path, cache: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m golf.train` exactly as a user would, with outputs under `out`."""
    full_env = {**os.environ, "GOLF_CACHE": str(cache), "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "golf.train", *args, f"paths.out_root={out}"],
                          cwd=out, env=full_env, capture_output=True, text=True, timeout=600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_two_gloo_ranks(fn, *args) -> dict:
    """{rank: fn(rank, *args)} from two processes of one gloo process group (fn: a module-level function)."""
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_gloo_rank, args=(free_port(), fn, args, out), nprocs=2)
        return dict(out)


def _gloo_rank(rank: int, port: int, fn, args: tuple, out) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        out[rank] = fn(rank, *args)
    finally:
        dist.destroy_process_group()
def job_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.rglob("results.json"))


def read_results(job_dir: Path) -> dict:
    return json.loads((job_dir / "results.json").read_text())


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory, demo_cache) -> Path:
    """One real sweep through the submitit_local launcher preset, shared by the sweep, report, export and
    dashboard tests: two seeds that complete and two jobs that fail validation (num_kv_heads=3 does
    not divide num_heads=2), with offline W&B runs. Returns the sweep dir."""
    out = tmp_path_factory.mktemp("tiny_sweep")
    proc = run_golf(["-m", *FAST_RUN, "seed=1,2", "arch.num_kv_heads=1,3", "hydra/launcher=golf_submitit_local",
                     "logger=wandb", "logger.mode=offline"], out, demo_cache, env={"WANDB_MODE": "offline"})
    assert proc.returncode != 0 and "must divide arch.num_heads" in proc.stderr, proc.stderr[-3000:]
    [sweep_dir] = (out / "multirun").iterdir()
    return sweep_dir
