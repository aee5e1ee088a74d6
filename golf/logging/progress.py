"""Progress with rate and ETA for the long steps that print nothing until they end: evaluation, TTT,
GPTQ, downloads.

One line redrawn in place on rank 0's terminal (stderr); nothing when stderr is not a terminal, so logs,
CI and train.log stay clean (each step logs its result when it ends). It only counts what the caller
reports: it never reads a device value, so it adds no host sync.
"""

import sys
import time

from golf.logging.console import format_duration

REDRAW_SECONDS = 0.5


class Progress:
    def __init__(self, total: int, desc: str, unit: str = "it", rank: int = 0, stream=None):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = rank == 0 and total > 0 and self.stream.isatty()
        self.done = 0
        self.t0 = self.last_draw = time.perf_counter()
        self.drawn = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self.last_draw >= REDRAW_SECONDS or self.done >= self.total):
            self.last_draw = now
            self._draw(now - self.t0)

    def _draw(self, elapsed: float) -> None:
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = format_duration((self.total - self.done) / rate) if rate > 0 else "?"
        self.stream.write(f"\r{self.desc}: {self.done:,}/{self.total:,} {self.unit} "
                          f"({100 * self.done / self.total:.0f}%), {rate:,.1f} {self.unit}/s, "
                          f"elapsed {format_duration(elapsed)}, ETA {eta}  ")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
