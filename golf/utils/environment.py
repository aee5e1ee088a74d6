"""env.json: what ran where (git state, package versions, devices); environment variables from an allow-list."""

import os
import platform
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

# The only environment variables env.json records, by exact name: the ones golf reads and the ones that say where
# a job ran. An allow-list, not a deny-list: a cluster's environment holds credentials under any name
# (*_PASSWD, *_AUTH, *_CREDENTIALS, DATABASE_URL=postgres://user:password@...). A SLURM array task is <array
# job id>_<task id>: its SLURM_JOB_ID alone can equal the array's id, which scancel reads as every task.
# SLURM_RESTART_COUNT says how often the job was requeued (preemptions, time limits).
RECORDED_ENV = ("GOLF_OUT", "GOLF_DATA", "GOLF_CACHE", "GOLF_TOKENIZERS", "GOLF_JOBS", "GOLF_VENV", "GOLF_NODE_RANK",
                "GOLF_RDZV_HOST", "GOLF_SLURM_PARTITION", "GOLF_SLURM_ACCOUNT", "GOLF_SLURM_QOS", "GOLF_SLURM_TIME_MIN",
                "GOLF_SLURM_CPUS", "WANDB_MODE", "WANDB_PROJECT", "WANDB_ENTITY", "CUDA_VISIBLE_DEVICES",
                "OMP_NUM_THREADS", "SLURM_JOB_ID", "SLURM_NNODES", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                "SLURM_RESTART_COUNT")
# user:password@ (or a bare token@) in a URL, even inside an allowed variable (GOLF_DATA=s3://key:secret@bucket/)
URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_state() -> dict:
    repo = Path(__file__).resolve().parents[2]
    commit = _git(["rev-parse", "HEAD"], repo)
    dirty = _git(["status", "--porcelain", "--untracked-files=no"], repo)
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The processor's marketing name where Linux tells it (CPUs of one architecture differ in speed and in
    the last bits of their float kernels), else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def environment_info() -> dict:
    env = {k: URL_CREDENTIALS.sub("***@", os.environ[k]) for k in RECORDED_ENV if k in os.environ}
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "packages": {p: _version(p) for p in ("hydra-core", "omegaconf", "wandb", "sentencepiece", "numpy",
                                               "zstandard")},
        "git": git_state(),
        "env": env,
    }
