"""How a job's ranks are started: torchrun on one node, or on several joined by one rendezvous.

Multi-node jobs run one golf.train task per node (SLURM preset: `nodes: ${launcher.nnodes}`,
`tasks_per_node: 1`). Node 0 does everything a single-node job does (validation, the job dir,
results.json); every node, node 0 included, starts torchrun with a c10d rendezvous hosted on the first
node of the allocation, so the ranks of all nodes form one world. The workers read the job dir's
config.yaml from the shared filesystem; node 0 writes it before its own torchrun joins the rendezvous,
and no rank starts before the rendezvous is complete, so no worker can read it early.
"""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from golf.errors import ConfigError


def usable_cpus() -> int:
    """The CPUs this process may run on (what `nproc` prints), else all of them."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# `${nproc:}` in launcher presets (slurm_cpu asks SLURM for as many CPUs per task as the submitting machine
# has); registered here because golf.train imports this module before Hydra composes the config.
OmegaConf.register_new_resolver("nproc", usable_cpus, replace=True)


@dataclass(frozen=True)
class Placement:
    node_rank: int
    nnodes: int
    rdzv_host: str | None  # None: single node, torchrun --standalone
    rdzv_id: str


def _first_host_of_allocation() -> str | None:
    """The first node of the SLURM allocation (where node 0 runs), as SLURM names it."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        return None
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=False)
    hosts = out.stdout.split()
    return hosts[0] if out.returncode == 0 and hosts else None


def placement(launcher_cfg) -> Placement:
    """This process's node in the job; GOLF_NODE_RANK / GOLF_RDZV_HOST override SLURM's variables."""
    nnodes = launcher_cfg.nnodes
    if nnodes == 1:
        return Placement(0, 1, None, "")
    env = os.environ
    node_rank = env.get("GOLF_NODE_RANK", env.get("SLURM_NODEID"))
    host = env.get("GOLF_RDZV_HOST") or _first_host_of_allocation()
    if node_rank is None or host is None:
        raise ConfigError(f"launcher.nnodes={nnodes} needs one task per node under SLURM (hydra/launcher=slurm_h100x8) "
                          f"or GOLF_NODE_RANK and GOLF_RDZV_HOST set on every node")
    return Placement(int(node_rank), nnodes, host, env.get("SLURM_JOB_ID", "golf"))


def torchrun_command(launcher_cfg, job_dir: Path, where: Placement) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if where.rdzv_host is None:
        cmd.append("--standalone")
    else:
        cmd += [f"--nnodes={where.nnodes}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={where.rdzv_host}:{launcher_cfg.rdzv_port}", f"--rdzv-id={where.rdzv_id}"]
    return [*cmd, f"--nproc_per_node={launcher_cfg.nproc}", "-m", "golf.worker", str(job_dir)]
