"""One launch of golf.train, a `-m` sweep or a single run, is one W&B group.

`launch.json` holds the launch's group id (`<date>_<sweep>_<hash>`: readable, distinct across launches) and
the keys the sweep varies. A sweep's lives in the sweep dir, written when the sweep starts (golf's Hydra
callback, golf.dashboard.callback); a single run's in its job dir, written by the job. Every job of a sweep
reads the same file, and a resumed job, which continues in its first dir, finds its first launch again.
"""

import hashlib
import os
import socket
import time
from pathlib import Path

from golf.logging.jsonio import read_json, write_json

LAUNCH_FILE = "launch.json"


def new_launch(sweep_name: str, varied: list[str], where: Path) -> dict:
    stamp = time.time_ns()
    digest = hashlib.sha1(f"{socket.gethostname()}:{Path(where).resolve()}:{stamp}:{os.getpid()}".encode())
    return {"group": f"{time.strftime('%Y-%m-%d')}_{sweep_name}_{digest.hexdigest()[:6]}", "sweep": sweep_name,
            "varied": varied, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp / 1e9))}


def write_launch(launch_dir: Path, record: dict) -> dict:
    """Create `launch_dir/launch.json` unless it exists; return the file's record. Jobs that start at once
    (parallel launchers) race here: the first link wins, the others read the winner's file."""
    path = Path(launch_dir) / LAUNCH_FILE
    tmp = path.with_name(f"{LAUNCH_FILE}.{os.getpid()}.tmp")
    write_json(tmp, record)
    try:
        os.link(tmp, path)  # atomic, and fails if the file exists
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return read_json(path)


def job_launch(job_dir: Path, results: dict, sweep_name: str) -> dict:
    """The launch a job belongs to: a sweep job's dir sits in the sweep dir (Hydra's sweep.subdir), a single
    run's launch is its own dir. A sweep started without the callback gets its file from its first job."""
    job_dir = Path(job_dir)
    launch_dir = job_dir.parent if results.get("sweep") else job_dir
    path = launch_dir / LAUNCH_FILE
    if path.exists():
        return read_json(path)
    return write_launch(launch_dir, new_launch(sweep_name, [], launch_dir))
