"""Strict JSON files, written atomically (golf.utils.atomic), so a crash never leaves half a file; a NaN or inf
is refused (it would not be valid JSON). A file that does not parse (truncated or altered by hand: golf never
writes one) is a `CorruptFile` naming it."""

import json
from pathlib import Path

from golf.errors import GolfError
from golf.utils.atomic import write_text


class CorruptFile(GolfError, ValueError):
    """A JSON file that does not parse; a ValueError too, so callers that skip unreadable files still do."""


def write_json(path: Path, obj) -> None:
    write_text(Path(path), json.dumps(obj, indent=2, default=str, allow_nan=False) + "\n")


def read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptFile(f"{path} is not valid JSON ({exc}): it was truncated or altered outside golf; restore it, "
                          f"or re-run the job that wrote it") from None
