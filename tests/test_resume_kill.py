"""Kill a real training process (SIGKILL, then SIGTERM), resume it with resume=auto, and get exactly
the uninterrupted run's weights, losses and val_bpb."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
import torch
from conftest import FAST_RUN, job_dirs, read_results, run_golf

LONGER = {"train.iterations": "16", "train.warmdown_iters": "6", "train.val_every": "8", "train.log_every": "1"}
ARGS = [a for a in FAST_RUN if a.split("=")[0] not in LONGER] + [f"{k}={v}" for k, v in LONGER.items()] + [
    "train.checkpoint_every_steps=2", "train.deterministic=true", "resume=auto"]


def _start(out, cache):
    env = {**os.environ, "GOLF_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "golf.train", *ARGS, f"paths.out_root={out}"], cwd=out, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_after_step(proc, step: int, sig: int) -> str:
    """Read the run's console until it logs `step`, then send `sig`; return everything it printed."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        match = re.match(r"step (\d+)/16 train_loss", line)
        if match and int(match.group(1)) >= step:
            proc.send_signal(sig)
            break
    seen.append(proc.stdout.read())
    proc.wait(timeout=120)
    return "".join(seen)


def _train_losses(job):
    records = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train/loss"]) for r in records if "train/loss" in r]


def _final_weights(job):
    return torch.load(job / "ckpt" / "last.pt", map_location="cpu", weights_only=False)["model"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_cache):
    out = tmp_path_factory.mktemp("reference")
    proc = run_golf(ARGS, out, demo_cache)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [job] = job_dirs(out)
    return job


def test_sigkill_then_sigterm_then_resume_matches_uninterrupted(tmp_path, demo_cache, reference):
    killed = _kill_after_step(_start(tmp_path, demo_cache), 5, signal.SIGKILL)
    assert "checkpoint: step 4 ->" in killed
    [job] = job_dirs(tmp_path)
    assert read_results(job)["status"] == "running"  # a SIGKILL leaves no chance to write anything
    first_ckpt = torch.load(job / "ckpt" / "last.pt", map_location="cpu", weights_only=False)["step"]
    assert 4 <= first_ckpt < 16

    proc = _start(tmp_path, demo_cache)
    terminated = _kill_after_step(proc, first_ckpt + 3, signal.SIGTERM)
    assert proc.returncode != 0
    assert f"resumed from {job / 'ckpt' / 'last.pt'}: step {first_ckpt}" in terminated
    assert job_dirs(tmp_path) == [job]  # the same job dir, not a new one
    interrupted = read_results(job)
    assert interrupted["status"] == "interrupted", interrupted.get("error")
    stopped_at = interrupted["interrupted"]["checkpoint_step"]
    assert first_ckpt + 3 <= stopped_at < 16
    assert "resume=auto" in interrupted["interrupted"]["resume"] and "SIGTERM" in interrupted["interrupted"]["message"]
    assert torch.load(job / "ckpt" / "last.pt", map_location="cpu", weights_only=False)["step"] == stopped_at

    changed = run_golf(ARGS, tmp_path, demo_cache, env={"GOLF_DATA": str(tmp_path / "elsewhere")})
    assert changed.returncode != 0
    assert f"paths.data_root: '{tmp_path / 'data'}' -> '{tmp_path / 'elsewhere'}'" in changed.stderr
    assert read_results(job) == interrupted  # the refused re-run touched nothing of the job
    [refused] = set(job_dirs(tmp_path)) - {job}  # the refused attempt records its error in its own dir
    assert read_results(refused)["error"]["type"] == "ConfigError"
    shutil.rmtree(refused)

    done = run_golf(ARGS, tmp_path, demo_cache)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert job_dirs(tmp_path) == [job]
    final, expected = read_results(job), read_results(reference)
    assert final["status"] == "completed" and final["resumed"]["from_step"] == stopped_at
    assert [a["status"] for a in final["attempts"]] == ["lost", "interrupted"]  # the SIGKILL left "running"
    assert final["metrics"]["val_bpb"] == expected["metrics"]["val_bpb"]
    assert final["metrics"]["train_loss_final"] == expected["metrics"]["train_loss_final"]
    assert final["artifact"]["sha256"] == expected["artifact"]["sha256"]
    assert _train_losses(job) == _train_losses(reference)  # also: no duplicated or missing metric records
    mine, theirs = _final_weights(job), _final_weights(reference)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


def test_rerun_of_completed_job_is_skipped(tmp_path, demo_cache, reference):
    out = reference.parents[1]
    before = read_results(reference)
    proc = run_golf(ARGS, out, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "already completed; not run again" in proc.stdout
    assert f"val_bpb {before['metrics']['val_bpb']:.8f}" in proc.stdout
    assert job_dirs(out) == [reference] and len(list((out / "runs").iterdir())) == 1
    assert read_results(reference) == before
