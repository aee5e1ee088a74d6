"""Atomic, strict JSON files: write to a temp file, fsync, rename, so a crash never leaves half a file; a
NaN or inf is refused (it would not be valid JSON)."""

import json
import os
from pathlib import Path


def write_json(path: Path, obj) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, default=str, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A full disk or a crash mid-write: the previous file stays whole; drop the partial one.
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
