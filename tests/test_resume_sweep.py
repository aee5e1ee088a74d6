"""A sweep interrupted by SIGTERM, re-run with resume=auto: the completed job is skipped, the
interrupted one continues in its own dir; after a SIGKILL, a job that never started runs in the same sweep
dir. Secrets in the environment appear in no output file."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import FAST_RUN, job_dirs, read_results, run_golf

from golf.utils.environment import environment_info

ARGS = ["-m", "seed=1,2", "resume=auto", *[a for a in FAST_RUN if a.split("=")[0] not in ("train.log_every", "logger")],
        "train.log_every=1", "train.checkpoint_every_steps=2", "logger=wandb", "logger.mode=offline"]
WANDB_OFFLINE = {"WANDB_MODE": "offline"}
# Credentials under names no deny-list guesses, and one inside a variable golf does record
SECRETS = {"WANDB_API_KEY": "wandb-secret-4f1c9a", "GOLF_API_TOKEN": "golf-secret-77e2", "HF_TOKEN": "hf-secret-9a0b",
           "GOLF_WANDB_KEY": "golf-secret-key-31d", "MYSQL_PASSWD": "passwd-secret-5e", "GOLF_NOTE": "note-secret-0c",
           "REGISTRY_AUTH": "auth-secret-8d", "GCP_CREDENTIALS": "cred-secret-2b",
           "DATABASE_URL": "postgres://golf:url-secret-6f@db:5432/runs"}


def test_environment_info_keeps_only_allowed_variables_without_credentials(monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GOLF_DATA", "s3://AKIA:bucket-secret-1a@bucket/golf")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    env = environment_info()["env"]
    assert env["SLURM_ARRAY_TASK_ID"] == "3" and env["GOLF_DATA"] == "s3://***@bucket/golf"
    assert "secret" not in repr(env)


def test_environment_names_the_cpu_model():
    """Two CPUs of one architecture give different last digits; env.json says which one ran."""
    cpu = environment_info()["cpu"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "model name" in cpuinfo.read_text():
        assert f": {cpu}\n" in cpuinfo.read_text()
    assert cpu


def test_interrupted_sweep_rerun_skips_completed_and_resumes_the_rest(tmp_path, demo_cache):
    env = {**os.environ, **SECRETS, **WANDB_OFFLINE, "GOLF_CACHE": str(demo_cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "golf.train", *ARGS, f"paths.out_root={tmp_path}"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed, finished_jobs = [], 0
    for line in proc.stdout:
        printed.append(line)
        finished_jobs += line.startswith("golf | val_bpb")
        if finished_jobs == 1 and line.startswith("step 2/6 train_loss"):
            proc.send_signal(signal.SIGTERM)  # during the second job
            break
    printed.append(proc.stdout.read())
    assert proc.wait(timeout=120) != 0, "".join(printed)[-3000:]
    first, second = job_dirs(tmp_path)
    assert read_results(first)["status"] == "completed"
    interrupted = read_results(second)
    assert interrupted["status"] == "interrupted"
    assert "resume=auto" in interrupted["interrupted"]["resume"]
    done_before = read_results(first)

    again = run_golf(ARGS, tmp_path, demo_cache, env={**SECRETS, **WANDB_OFFLINE})
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"{first} already completed; not run again" in again.stdout
    assert f"continuing {second} (status interrupted)" in again.stdout
    assert job_dirs(tmp_path) == [first, second]  # the re-run's own sweep dir holds no job dirs
    assert read_results(first) == done_before
    resumed = read_results(second)
    assert resumed["status"] == "completed" and resumed["resumed"]["from_step"] >= 2
    assert resumed["metrics"]["steps"] == 6
    # The resumed job continues its W&B run (same id, two offline pieces that `wandb sync` joins) in its first
    # launch's group, not the re-run's.
    pieces = sorted((second / "wandb").glob("offline-run-*"))
    assert len(pieces) == 2 and {p.name.rsplit("-", 1)[1] for p in pieces} == {resumed["wandb"]["run_id"]}
    assert resumed["wandb"]["group"] == read_results(first)["wandb"]["group"]
    assert resumed["wandb"]["group"] == json.loads((first.parent / "launch.json").read_text())["group"]
    # the re-run rebuilds the first launch's dashboard, now with both jobs completed
    assert "| `all` | 2 |" in (first.parent / "dashboard" / "report.md").read_text()

    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="replace")
            assert not [k for k, v in SECRETS.items() if v in text], path


def test_a_job_the_kill_kept_from_starting_runs_in_the_killed_sweeps_dir(tmp_path, demo_cache):
    args = [a for a in ARGS if a not in ("logger=wandb", "logger.mode=offline")]
    env = {**os.environ, "GOLF_CACHE": str(demo_cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "golf.train", *args, f"paths.out_root={tmp_path}"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("step 3/6 train_loss"):
            proc.kill()  # during the first job (it checkpointed at step 2); the second never starts
            break
    proc.wait(timeout=60)
    [first] = job_dirs(tmp_path)
    assert read_results(first)["status"] == "running"

    again = run_golf(args, tmp_path, demo_cache)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    [_, second] = job_dirs(tmp_path)
    assert second.parent == first.parent and second.name.startswith("1_")  # beside its sibling, not in a new dir
    assert f"it runs in the sweep's earlier dir {second}" in again.stdout
    assert read_results(first)["status"] == read_results(second)["status"] == "completed"
    assert [a["status"] for a in read_results(first)["attempts"]] == ["lost"]
