"""Atomic file writes: a kill or a full disk never leaves half a file under the final name.

Every file golf rewrites in a job dir (results.json, config.yaml, env.json, ckpt/last.pt, prequant.pt,
the rewound metrics.jsonl) is written to `<name>.tmp`, flushed, fsynced and renamed over the old one;
the rename itself is fsynced with its folder, or a power loss could bring the old file back. A failed
write removes its temp file at once (on a full disk that frees the space it took), and a temp file a
SIGKILL left behind is removed by `remove_temp_files` when the job is next taken over.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(f)` on a binary temp file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def remove_temp_files(folders: list[Path]) -> list[Path]:
    """Delete the temp files a killed writer left in `folders` (not recursive); return what was removed."""
    removed = []
    for folder in folders:
        for path in Path(folder).glob("*" + TMP_SUFFIX):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
