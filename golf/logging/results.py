"""results.json: the source of truth of one run, and its declared layout (docs/architecture.md#job-dir;
the checks: docs/compliance.md).

The parent writes it first with status "running"; the worker's rank 0 fills it in section by section
(every update is an atomic rewrite, so nothing already written is lost); any failure leaves status
"failed" with the error type, message and where the traceback was written; a preemption signal leaves
status "interrupted" with the checkpoint step and the command that continues the run. A SIGKILL leaves
"running": `resume=auto` tells it from a live run by the job lock (golf.resume). The file is strict JSON:
a NaN or inf anywhere is a bug, refused when written. A job continued by a later process keeps each earlier
attempt's outcome in `attempts` (status, times, git state, error); one that ended without a word (SIGKILL,
the OOM killer, a full disk that refused even the failure record) is entered there as "lost". When the disk
is full, recording a failure first deletes the job's temp files (the half-written file that filled it).

The sections every reader uses (the summary line, golf.report, golf.export, the W&B summary) are declared
below; writers fill them from these dataclasses and readers read them through `section`, so a key that
nothing writes cannot be read.
"""

import dataclasses
import logging
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from golf.logging.jsonio import read_json, write_json
from golf.utils.atomic import remove_temp_files, write_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
RESULTS_FILE = "results.json"
# What `attempts` keeps of each earlier process that ran the job
ATTEMPT_KEYS = ("status", "started_at", "finished_at", "launch_id", "git", "error", "interrupted")


@dataclass
class Metrics:
    val_bpb: float  # the headline: the metric the leaderboard reports for the run's protocol
    val_loss: float  # nats per token of the same protocol
    headline: str  # which protocol the headline is: roundtrip | sliding | ttt
    val_tokens: int
    val_bytes: int
    val_bpb_roundtrip: float  # the non-overlapping eval of the reloaded artifact (official baseline's final line)
    val_loss_roundtrip: float
    val_bpb_prequant: float  # the trained (averaged) weights before quantization
    val_loss_prequant: float
    train_loss_final: float
    steps: int
    tokens_seen: int
    val_bpb_sliding: float | None = None
    val_loss_sliding: float | None = None
    val_bpb_ttt: float | None = None  # a legal TTT protocol's score
    val_loss_ttt: float | None = None
    val_bpb_prequant_ttt: float | None = None  # research only (ttt=prequant_*), never a headline
    unk_targets: int = 0  # scored targets that are <unk> (0 bytes each, as the official metric counts them)


@dataclass
class Timing:
    train_s: float  # measured training time (validation excluded; end-of-training calibration included)
    quant_s: float
    eval_s: float  # the official eval timer for the headline protocol, on budget.devices devices
    eval_measured_s: float  # the same, as measured on this run's devices
    eval_devices: int  # devices (processes) the eval ran on
    roundtrip_s: float
    sliding_s: float | None = None
    ttt_s: float | None = None
    diagnostics_s: float = 0.0  # outside the eval timer (the memorization diagnostic)


@dataclass
class ArtifactInfo:
    bytes_total: int  # bytes_model + bytes_code, against limit_bytes
    bytes_model: int  # artifact/model.golf
    bytes_code: int  # train_gpt.py, the record script of this run
    limit_bytes: int
    headroom_bytes: int
    compressor: str
    quant: str
    sha256: str  # of the artifact's compressed payload
    path: str  # relative to the job dir


def section(cls, results: dict, name: str):
    """Section `name` of a results.json read as `cls` (missing optional fields take their defaults)."""
    data = results.get(name) or {}
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def _finite(value):
    """`value` with every NaN / inf float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Results:
    def __init__(self, job_dir: Path):
        self.path = Path(job_dir) / RESULTS_FILE
        self.data = read_json(self.path) if self.path.exists() else {"schema_version": SCHEMA_VERSION}

    def start(self, **fields) -> None:
        """This process runs the job now; an earlier attempt's outcome moves to `attempts`."""
        if "status" in self.data:
            before = {k: self.data[k] for k in ATTEMPT_KEYS if self.data.get(k) is not None}
            if before["status"] == "running":
                before.update(status="lost", error={"message": "the process ended without recording how (SIGKILL, "
                                                               "the OOM killer, a node failure or a full disk)"})
            self.data.setdefault("attempts", []).append(before)
        self.data.pop("interrupted", None)
        self.data.update(status="running", error=None, started_at=_now(), finished_at=None,
                         schema_version=SCHEMA_VERSION, **fields)
        self.save()

    def update(self, section_name: str | None = None, **fields) -> None:
        """Merge fields at the top level, or into the dict `section_name` (metrics, timing, artifact...);
        a dataclass field value is stored as its dict."""
        target = self.data.setdefault(section_name, {}) if section_name else self.data
        target.update({k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in fields.items()})
        self.save()

    def write(self, name: str, value) -> None:
        """Set a declared section from its dataclass (replacing what was there)."""
        self.data[name] = dataclasses.asdict(value)
        self.save()

    def complete(self) -> None:
        self.data.update(status="completed", finished_at=_now())
        self.save()

    def interrupt(self, exc: BaseException, step: int | None) -> None:
        self.data.update(status="interrupted", finished_at=_now(), error=None, interrupted={
            "message": str(exc), "checkpoint_step": step,
            "resume": f"re-run the same command with resume=auto: {self.data.get('resume_command')}"})
        self._save_end()

    def fail(self, exc: BaseException, where: str) -> None:
        tb_file = self.path.parent / "error.txt"
        self.data = _finite(self.data)  # whatever failed must not also make the record unwritable
        self.data.update(status="failed", finished_at=_now(), error={
            "type": type(exc).__name__, "message": str(exc), "where": where, "traceback_file": tb_file.name})
        try:
            write_text(tb_file, "".join(traceback.format_exception(exc)))
        except OSError:
            pass  # the traceback is a detail; results.json below is the record
        self._save_end()

    def _save_end(self) -> None:
        """Record how the run ended, even on a full disk: the job's temp files go first (the file whose write
        failed), then one retry; if that fails too, the record stays "running" and the next attempt enters
        this one as lost. Never raises: the error that ended the run is the one to report."""
        try:
            self.save()
            return
        except OSError:
            removed = remove_temp_files([self.path.parent, *(p for p in self.path.parent.iterdir() if p.is_dir())])
        try:
            self.save()
            log.warning(f"recorded status {self.data['status']} after removing {len(removed)} temp file(s) "
                        f"({', '.join(p.name for p in removed)}) to free space")
        except OSError as exc:
            log.error(f"could not record status {self.data['status']} in {self.path} ({exc}); it keeps its last "
                      f"state until the job is continued with resume=auto, which records this attempt as lost")

    def save(self) -> None:
        write_json(self.path, self.data)
