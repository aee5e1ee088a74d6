"""results.json: the source of truth of one run (docs/architecture.md#job-dir, checks: docs/compliance.md).

The parent writes it first with status "running"; the worker's rank 0 fills it in section by
section (every update is an atomic rewrite, so nothing already written is lost); any failure
leaves status "failed" with the error type, message and where the traceback was written; a
preemption signal leaves status "interrupted" with the checkpoint step and the command that
continues the run. A SIGKILL leaves "running": `resume=auto` tells it from a live run by the job
lock (golf.resume).
"""

import time
import traceback
from pathlib import Path

from golf.logging.jsonio import read_json, write_json

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Results:
    def __init__(self, job_dir: Path):
        self.path = Path(job_dir) / RESULTS_FILE
        self.data = read_json(self.path) if self.path.exists() else {"schema_version": SCHEMA_VERSION}

    def start(self, **fields) -> None:
        self.data.pop("interrupted", None)
        self.data.update(status="running", error=None, started_at=_now(), finished_at=None, **fields)
        self.save()

    def update(self, section: str | None = None, **fields) -> None:
        """Merge fields at the top level, or into the dict `section` (metrics, timing, artifact...)."""
        target = self.data.setdefault(section, {}) if section else self.data
        target.update(fields)
        self.save()

    def complete(self) -> None:
        self.data.update(status="completed", finished_at=_now())
        self.save()

    def interrupt(self, exc: BaseException, step: int | None) -> None:
        self.data.update(status="interrupted", finished_at=_now(), error=None, interrupted={
            "message": str(exc), "checkpoint_step": step,
            "resume": f"re-run the same command with resume=auto: {self.data.get('resume_command')}"})
        self.save()

    def fail(self, exc: BaseException, where: str) -> None:
        tb_file = self.path.parent / "error.txt"
        tb_file.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        self.data.update(status="failed", finished_at=_now(), error={
            "type": type(exc).__name__, "message": str(exc), "where": where, "traceback_file": tb_file.name})
        self.save()

    def save(self) -> None:
        write_json(self.path, self.data)
