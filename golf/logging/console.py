"""Console and log-file logging: rank 0 logs to both, other ranks only warnings with a rank prefix."""

import logging
import statistics
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(log_file: Path | None, rank: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if rank == 0:
        root.setLevel(logging.INFO)
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(console)
        if log_file is not None:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
            file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            root.addHandler(file_handler)
    else:
        root.setLevel(logging.WARNING)
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(f"[rank {rank}] %(message)s"))
        root.addHandler(console)


def format_duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def expected_training(step_seconds: list[float], iterations: int, compile_steps: int, cap_seconds: float) -> str:
    """The training time the warm-up predicts: `iterations` x its steady ms/step (the median of the steps after
    the first `compile_steps`, which build the graphs), and where a wall-clock cap would cut it."""
    ms = 1000 * statistics.median(step_seconds[compile_steps:] or step_seconds[-1:])
    total_s = iterations * ms / 1000
    line = f"expected training time: {iterations:,} steps x {ms:,.1f} ms/step (warm-up) = {format_duration(total_s)}"
    if 0 < cap_seconds < total_s:
        line += f"; the {cap_seconds:.0f} s cap stops it after about {int(1000 * cap_seconds / ms):,} steps"
    return line + " (validation, export and eval come on top)"
