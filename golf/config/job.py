"""Where and how a job runs (`paths`, `resume`, `logger`, `launcher`): never part of what a run computes."""

from dataclasses import dataclass
from typing import Optional

from golf.config.choice import Choice


@dataclass
class PathsConfig:
    out_root: str = "outputs"
    data_root: str = "data"
    cache: str = ""  # demo data cache; empty: $GOLF_CACHE or ~/.cache/golf


class ResumeMode(Choice):
    never = "never"  # always a new job dir
    auto = "auto"  # find this command's previous job: skip it if completed, else continue from ckpt/last.pt


@dataclass
class ResumeConfig:
    """`resume=never|auto` selects the mode (golf/conf/resume/); see golf.resume."""

    mode: ResumeMode = ResumeMode.never
    allow_code_change: bool = False  # continue a job although this code writes a different train_gpt.py


class LoggerName(Choice):
    wandb = "wandb"
    none = "none"


class WandbMode(Choice):
    offline = "offline"
    online = "online"
    disabled = "disabled"


@dataclass
class LoggerConfig:
    name: LoggerName = LoggerName.wandb
    mode: WandbMode = WandbMode.offline
    project: str = "golf"
    entity: Optional[str] = None
    group: Optional[str] = None  # default: the sweep name


class LauncherName(Choice):
    inproc = "inproc"
    torchrun = "torchrun"


@dataclass
class LauncherConfig:
    name: LauncherName = LauncherName.inproc
    nproc: int = 1  # processes (GPUs) per node
    nnodes: int = 1  # > 1: one task per node, torchrun c10d rendezvous on the allocation's first node
    rdzv_port: int = 29500
