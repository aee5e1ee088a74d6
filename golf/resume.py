"""Which job dir a launch may write into, and `resume=auto`: find the job a command wrote before and continue it.

Every launch gets a new dir (golf.output_dirs), so a dir that already holds a job (its results.json) is
entered only to continue that very job:

    the same launch again (a SLURM requeue re-runs the pickled job)  -> continued, whatever `resume` says
    another job's dir (other overrides)                               -> refused: golf never writes into it
    this job's dir, resume=never (an explicit hydra.run.dir)          -> refused, naming the resume command
    this job's dir, resume=auto                                       -> continued

The job key identifies a job across launches: the sha256 of its task overrides (sorted, without `resume`)
and whether it ran in a sweep. It is stored in results.json as `job_key`; with `resume=auto` a re-run of the
same command (or of the same sweep: each job's overrides include its swept values) looks for it under
`paths.out_root` (`runs/*/` and `multirun/*/*/`) and takes the newest match:

    completed                   -> skipped; its results are reported again
    interrupted / failed /
    running without a live lock -> continued in that dir, from ckpt/last.pt if there is one
    running with a live lock    -> error: the job is running now

A re-run sweep whose job never started (the sweep was killed before it) runs that job in the earlier sweep
dir of the same command, beside its siblings, so the sweep reads as one. Whether the config is still the
same is a separate check: the resolved config's sha256 must equal the one recorded, otherwise the re-run
refuses. So must the code: a job continues only with the code that writes the same train_gpt.py it counted,
unless `resume.allow_code_change=true` (golf.record: see `check_same_code`). The lock is an flock on
`<job dir>/.lock` held by the process that runs the job; the kernel drops it when that process dies, even by
SIGKILL. Nothing here writes into a job dir.
"""

import fcntl
import hashlib
import json
import os
import shlex
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from golf.errors import ConfigError, GolfError
from golf.jobdir import JobDir
from golf.logging.jsonio import read_json
from golf.logging.results import RESULTS_FILE

LOCK_FILE = ".lock"
SWEEP_FILE = "multirun.yaml"  # Hydra writes the sweep's config (its overrides included) into every sweep dir


class JobRunning(GolfError):
    """Another process holds the job's lock."""


def without_resume(overrides) -> list[str]:
    """The overrides that say what a job computes: `resume=` / `resume.*` only say how it starts."""
    return [o for o in overrides if not o.lstrip("+~").startswith("resume")]


def overrides_sha256(overrides) -> str:
    """What a command computes, as a hash: its overrides in any order, without `resume`."""
    return hashlib.sha256(json.dumps(sorted(without_resume(overrides))).encode()).hexdigest()


def job_key(overrides: list[str], multirun: bool) -> str:
    identity = {"overrides": sorted(without_resume(overrides)), "multirun": multirun}
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def run_resume_command(overrides: list[str], run_dir: Path) -> str:
    """The command that continues the single run in `run_dir`."""
    return " ".join(["python -m golf.train", *map(shlex.quote, without_resume(overrides)), "resume=auto",
                     shlex.quote(f"hydra.run.dir={run_dir}")])


def _results(job_dir: Path) -> dict | None:
    path = Path(job_dir) / RESULTS_FILE
    return read_json(path) if path.is_file() else None


def check_existing_job(job_dir: Path, mode: str, key: str, launch_id: str, resume_command: str) -> None:
    """Refuse to enter a dir that holds a job, unless this launch may continue it (the table above)."""
    before = _results(job_dir)
    if before is None or before.get("launch_id") == launch_id:
        return
    if before.get("job_key") != key:
        raise ConfigError(f"{job_dir} holds another job (overrides {' '.join(before.get('overrides') or [])!r}, "
                          f"status {before.get('status')}); golf never writes into another job's dir: leave out "
                          f"hydra.run.dir / hydra.sweep.dir, or point it at a new folder")
    if mode != "auto":
        raise ConfigError(f"{job_dir} already holds this job (status {before.get('status')}) and resume=never "
                          f"starts a new one; continue it with: {resume_command}  (or point hydra.run.dir at a "
                          f"new folder)")


def check_existing_sweep(sweep_dir: Path, mode: str) -> None:
    """A sweep dir that holds jobs is entered only by `resume=auto` (the jobs then check their own dirs)."""
    held = sorted(p.parent.name for p in Path(sweep_dir).glob(f"*/{RESULTS_FILE}"))
    if held and mode != "auto":
        raise ConfigError(f"{sweep_dir} already holds jobs ({', '.join(held[:3])}{', ...' if len(held) > 3 else ''})"
                          f" and resume=never starts new ones; continue them with the same command and resume=auto, "
                          f"or leave out hydra.sweep.dir")


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
                continue  # truncated, or not ours
            if data.get("job_key") == key:
                found.append((data.get("started_at") or "", path.parent))
    return max(found)[1] if found else None


def sweep_key(sweep_dir: Path) -> str | None:
    """What identifies a sweep command across launches: its overrides (without `resume`), from multirun.yaml."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        return None
    overrides = OmegaConf.select(OmegaConf.load(path), "hydra.overrides.task", default=None)
    return overrides_sha256(OmegaConf.to_container(overrides, resolve=False)) if overrides is not None else None


def earlier_sweep_slot(out_root: Path, sweep_dir: Path, job_name: str) -> Path | None:
    """Where a job of a re-run sweep belongs when it never started before: `<job_name>` in the newest earlier sweep
    dir of the same command that holds some of its jobs, if that slot holds no job."""
    key = sweep_key(sweep_dir)
    if key is None:
        return None
    earlier = [d for d in Path(out_root).glob("multirun/*") if d.resolve() != Path(sweep_dir).resolve()
               and any(d.glob(f"*/{RESULTS_FILE}")) and sweep_key(d) == key]
    if not earlier:
        return None
    slot = max(earlier, key=lambda d: d.stat().st_mtime) / job_name
    return slot if not (slot / RESULTS_FILE).exists() else None


class JobLock:
    """An exclusive, non-blocking flock on `<job_dir>/.lock`, held while the job runs."""

    def __init__(self, job_dir: Path):
        self.path = Path(job_dir) / LOCK_FILE
        self.fd = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
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


def lock_is_held(job_dir: Path) -> bool:
    """Whether a live process holds the job's lock; read only (a missing lock file is not created)."""
    try:
        fd = os.open(Path(job_dir) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the shared lock, if it was granted
    return False


def _flat(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix: tree}
    return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}


def check_same_config(job_dir: Path, previous_hash: str | None, config: dict, config_hash: str) -> None:
    """Refuse to continue `job_dir` under another config, naming the keys that differ."""
    if previous_hash == config_hash:
        return
    before = _flat(JobDir(job_dir).resolved_config())
    now = _flat(config)
    changed = [f"{k.rstrip('.')}: {before.get(k)!r} -> {now.get(k)!r}" for k in sorted(before.keys() | now.keys())
               if not k.startswith("resume.") and before.get(k) != now.get(k)]
    raise ConfigError(f"resume=auto found {job_dir}, but its config differs ({'; '.join(changed[:5]) or 'hash only'}); "
                      f"restore it (same golf/conf/ files, environment and working directory), or use resume=never "
                      f"to start a new job")


def check_same_code(job_dir: Path, counted: bytes, now: bytes, git_before: dict | None, git_now: dict | None,
                    allowed: bool) -> bool:
    """Whether the code changed since the job started: the train_gpt.py it counted (`counted`) against the one
    this code writes for its config (`now`; it embeds every module the run executes). A change is refused unless
    `allowed`; returns True for an allowed change."""
    if counted == now:
        return False
    if not allowed:
        def state(git):
            return f"{(git or {}).get('commit') or 'unknown'}{' + local changes' if (git or {}).get('dirty') else ''}"

        raise ConfigError(f"the code changed since {job_dir} started: its train_gpt.py ({len(counted):,} B, git "
                          f"{state(git_before)}) is not the one this code writes ({len(now):,} B, git "
                          f"{state(git_now)}); continue with the code it started with, or pass "
                          f"resume.allow_code_change=true to finish it with this code (the job is then marked as "
                          f"trained by two codes, and golf.export refuses it)")
    return True


def remove_unused_dir(job_dir: Path) -> None:
    """Drop the fresh dir Hydra made for this re-run when the job continues elsewhere (only .hydra inside)."""
    if job_dir.is_dir() and all(p.name == ".hydra" for p in job_dir.iterdir()):
        shutil.rmtree(job_dir)
