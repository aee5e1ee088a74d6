"""`resume=auto`: find the job dir a command wrote before, so a re-run continues it in place.

Hydra names every run dir after the time it started, so the dir cannot identify a job. The job
key does: the sha256 of the job's task overrides (sorted, without `resume=`) and whether it ran
in a sweep. It is stored in results.json as `job_key`; a re-run of the same command (or of the
same sweep: each job's overrides include its swept values) looks for it under `paths.out_root`
(`runs/*/` and `multirun/*/*/`) and takes the newest match:

    completed                   -> skipped; its results are reported again
    interrupted / failed /
    running without a live lock -> continued in that dir, from ckpt/last.pt if there is one
    running with a live lock    -> error: the job is running now

Whether the config is still the same is a separate check: the resolved config's sha256 must
equal the one recorded, otherwise the re-run refuses (an edited golf/conf/ file changes the config
behind an unchanged command). The lock is an flock on `<job dir>/.lock` held by the process
that runs the job; the kernel drops it when that process dies, even by SIGKILL.
"""

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from golf.errors import ConfigError, GolfError
from golf.logging.jsonio import read_json
from golf.logging.results import RESULTS_FILE

LOCK_FILE = ".lock"


class JobRunning(GolfError):
    """Another process holds the job's lock."""


def job_key(overrides: list[str], multirun: bool) -> str:
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith("resume="))
    return hashlib.sha256(json.dumps({"overrides": kept, "multirun": multirun}).encode()).hexdigest()


def find_previous(out_root: Path, key: str, exclude: Path) -> Path | None:
    """The newest job dir under `out_root` whose results.json has `job_key == key`."""
    found = []
    for pattern in (f"runs/*/{RESULTS_FILE}", f"multirun/*/*/{RESULTS_FILE}"):
        for path in Path(out_root).glob(pattern):
            if path.parent.resolve() == exclude.resolve():
                continue
            try:
                data = read_json(path)
            except (OSError, ValueError):
                continue  # a results.json from before atomic writes, or not ours
            if data.get("job_key") == key:
                found.append((data.get("started_at") or "", path.parent))
    return max(found)[1] if found else None


class JobLock:
    """An exclusive, non-blocking flock on `<job_dir>/.lock`, held while the job runs."""

    def __init__(self, job_dir: Path):
        self.path = Path(job_dir) / LOCK_FILE
        self.fd = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JobRunning(f"job dir {self.path.parent} is locked by a running process; wait for it to finish, "
                             f"or run with resume=never for a separate job") from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _flat(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix: tree}
    return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}


def check_same_config(job_dir: Path, previous_hash: str | None, config: dict, config_hash: str) -> None:
    """Refuse to continue `job_dir` under another config, naming the keys that differ."""
    if previous_hash == config_hash:
        return
    before = _flat(OmegaConf.to_container(OmegaConf.load(job_dir / "config.yaml")))
    now = _flat(config)
    changed = [f"{k.rstrip('.')}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(before.keys() | now.keys())
               if k != "resume." and before.get(k) != now.get(k)]
    raise ConfigError(f"resume=auto found {job_dir}, but its config differs ({'; '.join(changed[:5]) or 'hash only'}); "
                      f"restore it (same golf/conf/ files, environment and working directory), or use resume=never "
                      f"to start a new job")


def remove_unused_dir(job_dir: Path) -> None:
    """Drop the fresh dir Hydra made for this re-run when the job continues elsewhere (only .hydra inside)."""
    if job_dir.is_dir() and all(p.name == ".hydra" for p in job_dir.iterdir()):
        shutil.rmtree(job_dir)
