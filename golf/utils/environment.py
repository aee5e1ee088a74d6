"""env.json: what ran where (git state, package versions, devices), with secrets never recorded."""

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

# Environment variables worth recording; nothing matching SECRET_MARKERS is ever written. A SLURM array
# task is <array job id>_<task id>: its SLURM_JOB_ID alone can equal the array's id, which scancel reads
# as every task. SLURM_RESTART_COUNT says how often the job was requeued (preemptions, time limits).
RECORDED_ENV_PREFIXES = ("GOLF_", "WANDB_MODE", "WANDB_PROJECT", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
                         "SLURM_JOB_ID", "SLURM_NNODES", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                         "SLURM_RESTART_COUNT")
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


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
    env = {k: v for k, v in os.environ.items()
           if k.startswith(RECORDED_ENV_PREFIXES) and not any(m in k.upper() for m in SECRET_MARKERS)}
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
