"""Which data files this process read, as whom and in which phase: entered by the shard reader itself
(golf.data.shards.load_shard calls the hook this module installs on import), so data-use compliance is
computed from what was opened, never from what a config says.

A reader names itself (`reading_as("calibration")`: the train loader, calibration, the val loader) and the
run marks its phases: `warmup` (compile warm-up steps before the timer starts; the weights are restored
after them, as in the official script), `training` (training time is counted; calibration inside the
training-time reserve runs in it). Everything else is phase "outside".
"""

import contextlib
import contextvars
import os
from dataclasses import dataclass, field
from pathlib import Path

from golf.data import shards

_reader = contextvars.ContextVar("golf_data_reader", default="other")
_phase = contextvars.ContextVar("golf_data_phase", default="outside")


@dataclass(frozen=True)
class FileRead:
    reader: str  # train, calibration, val, other
    phase: str  # warmup, training (counted training time) or outside
    path: str  # resolved path


@dataclass
class AccessLog:
    reads: list[FileRead] = field(default_factory=list)

    def record(self, path: str | Path) -> None:
        entry = FileRead(_reader.get(), _phase.get(), os.path.realpath(path))
        if not self.reads or self.reads[-1] != entry:
            self.reads.append(entry)

    def files(self, reader: str, phase: str | None = None) -> list[str]:
        """Distinct files `reader` read (in `phase`, when given), in first-read order."""
        found = [r.path for r in self.reads if r.reader == reader and (phase is None or r.phase == phase)]
        return list(dict.fromkeys(found))

    def clear(self) -> None:
        self.reads.clear()


LOG = AccessLog()  # the process's log: one run per process (torchrun ranks and sweep jobs are processes)
shards.READ_HOOKS.append(LOG.record)


@contextlib.contextmanager
def _setting(var: contextvars.ContextVar, value: str):
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def reading_as(reader: str):
    """Reads inside are recorded as made by `reader` (train, val, calibration)."""
    return _setting(_reader, reader)


def phase(name: str):
    """Reads inside are recorded in phase `name` (warmup, training)."""
    return _setting(_phase, name)
