"""Job dirs nobody can poison or collide: a planted checkpoint runs no code, two launches of one command never
share a dir, a dir that holds a job is never written by another launch, Ctrl-C checkpoints, and resuming after
a code change is refused unless allowed (real `python -m golf.train` processes)."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys

import torch
from conftest import FAST_RUN, job_dirs, read_results, run_golf

CHECKPOINTED = [*FAST_RUN, "train.checkpoint_every_steps=2", "resume=auto"]


class RunsAShellCommand:
    """What an attacker pickles: unpickling it calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _start(args, out, cache):
    env = {**os.environ, "GOLF_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "golf.train", *args, f"paths.out_root={out}"], cwd=out, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _error_line(proc) -> str:
    """The one line a refused or failed run prints (and nothing resembling a traceback)."""
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    return line


def test_planted_checkpoint_runs_nothing_and_resume_refuses_it(tmp_path, demo_cache):
    done = run_golf(CHECKPOINTED, tmp_path, demo_cache)
    assert done.returncode == 0, done.stderr[-3000:]
    [job] = job_dirs(tmp_path)
    # Someone with write access to out_root plants a checkpoint and marks the job unfinished, so resume=auto loads it
    marker = tmp_path / "pwned"
    torch.save({"format_version": 2, "step": 4, "payload": RunsAShellCommand(marker)}, job / "ckpt" / "last.pt")
    results = read_results(job)
    (job / "results.json").write_text(json.dumps({**results, "status": "failed"}))

    refused = run_golf(CHECKPOINTED, tmp_path, demo_cache)
    assert not marker.exists()
    line = _error_line(refused)
    assert f"{job / 'ckpt' / 'last.pt'} holds a Python object (posix.system)" in line
    assert f"delete {job / 'ckpt'} to restart the job from step 0" in line
    assert read_results(job)["error"]["type"] == "CheckpointError" and "resumed from" not in refused.stdout


def test_the_same_command_launched_twice_at_once_gets_two_dirs(tmp_path, demo_cache):
    procs = [_start(FAST_RUN, tmp_path, demo_cache) for _ in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    jobs = job_dirs(tmp_path)
    assert len(jobs) == 2
    # <time>_<run name>_<overrides id>-<launch id>: one command, so one overrides id; two launches
    names = [re.fullmatch(r"[\d_-]+_tiny-none-s1337_([0-9a-f]{6})-([0-9a-f]{6})", job.name) for job in jobs]
    assert all(names) and names[0][1] == names[1][1] and names[0][2] != names[1][2], [job.name for job in jobs]
    first, second = (read_results(job) for job in jobs)
    assert first["run_id"] == jobs[0].name and second["run_id"] == jobs[1].name
    assert first["launch_id"] != second["launch_id"] and first["status"] == second["status"] == "completed"
    assert first["metrics"]["val_bpb"] == second["metrics"]["val_bpb"]  # same seed, and neither wrote the other


def test_a_dir_that_holds_a_job_is_never_written_by_another_launch(tmp_path, demo_cache):
    job = tmp_path / "my run dir"
    done = run_golf([*FAST_RUN, f"hydra.run.dir={job}"], tmp_path, demo_cache)
    assert done.returncode == 0, done.stderr[-3000:]
    before = {p: p.read_bytes() for p in job.rglob("*") if p.is_file()}  # .hydra/ included

    again = run_golf([*FAST_RUN, f"hydra.run.dir={job}"], tmp_path, demo_cache)
    line = _error_line(again)
    assert "already holds this job (status completed) and resume=never starts a new one" in line
    assert f"resume=auto 'hydra.run.dir={job}'" in line  # the command that continues it, quoted for the shell
    other = run_golf([*FAST_RUN, "seed=7", f"hydra.run.dir={job}"], tmp_path, demo_cache)
    assert "holds another job" in _error_line(other) and "golf never writes into another job's dir" in other.stderr
    assert {p: p.read_bytes() for p in job.rglob("*") if p.is_file()} == before


def test_ctrl_c_checkpoints_and_a_code_change_is_refused_unless_allowed(tmp_path, demo_cache):
    longer = {"train.iterations": "12", "train.log_every": "1"}
    args = [a for a in CHECKPOINTED if a.split("=")[0] not in longer] + [f"{k}={v}" for k, v in longer.items()]
    proc = _start(args, tmp_path, demo_cache)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.match(r"step [3-9]/12 train_loss", line):
            proc.send_signal(signal.SIGINT)
            break
    seen.append(proc.stdout.read())
    assert proc.wait(timeout=120) != 0 and "Traceback" not in "".join(seen), "".join(seen)[-3000:]
    [job] = job_dirs(tmp_path)
    interrupted = read_results(job)
    assert interrupted["status"] == "interrupted" and "SIGINT" in interrupted["interrupted"]["message"]
    step = interrupted["interrupted"]["checkpoint_step"]
    assert torch.load(job / "ckpt" / "last.pt", weights_only=True)["step"] == step

    # The code changes: this golf now writes another train_gpt.py than the one the job counted so far
    counted = (job / "train_gpt.py").read_bytes() + b"# an edit made while the job was stopped\n"
    (job / "train_gpt.py").write_bytes(counted)
    refused = run_golf(args, tmp_path, demo_cache)
    assert "the code changed since" in _error_line(refused) and "resume.allow_code_change=true" in refused.stderr
    assert read_results(job) == interrupted

    # What a kill mid-write leaves: a torn last metrics line and a temp file beside the checkpoint
    with open(job / "metrics.jsonl", "a") as f:
        f.write('{"step": 99, "train/lo')
    (job / "ckpt" / "last.pt.tmp").write_bytes(b"half a checkpoint")
    allowed = run_golf([*args, "resume.allow_code_change=true"], tmp_path, demo_cache)
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    final = read_results(job)
    assert final["status"] == "completed" and final["resumed"]["from_step"] == step
    [change] = final["code_changes"]
    sha_before = hashlib.sha256(counted).hexdigest()
    assert change["sha256_before"] == sha_before and change["at_step"] == step
    assert change["sha256_after"] == hashlib.sha256((job / "train_gpt.py").read_bytes()).hexdigest() != sha_before
    assert (job / change["script_before"]).read_bytes() == counted
    assert change["git_before"] == interrupted["git"] and change["git_after"] == final["git"]
    assert [a["status"] for a in final["attempts"]] == ["interrupted"]
    assert not (job / "ckpt" / "last.pt.tmp").exists()
    records = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records) == 12


def test_names_from_the_command_line_cannot_leave_their_folder(tmp_path, demo_cache):
    escaped = run_golf([*FAST_RUN, "run_name=../../escaped"], tmp_path, demo_cache)
    assert "run_name='../../escaped' is not a plain name" in _error_line(escaped)
    assert not list(tmp_path.rglob("*escaped*")) and not (tmp_path.parent / "escaped").exists()
    tag = subprocess.run([sys.executable, "-m", "golf.ttt", str(tmp_path), "ttt=sgd", "--tag", "../escaped"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert tag.returncode == 1 and "Traceback" not in tag.stderr
    assert tag.stderr.startswith("error: --tag='../escaped' is not a plain name"), tag.stderr
