"""Optional assets some tests need: where they are looked for, skips that say what is missing, and the
end-of-run summary of the checks that did not run and how to get what they need.

The summary is a pytest hook; tests/conftest.py registers it by importing it.
"""

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from golf.data.fineweb import DEFAULT_OUT

REPO = Path(__file__).resolve().parents[1]
TOKENIZERS_ENV = "GOLF_TOKENIZERS"


def tokenizer_dirs() -> list[Path]:
    """Where official tokenizers are looked for, in order: $GOLF_TOKENIZERS, where --tokenizers-only writes
    them in the repository, and a shared/tokenizers folder beside the checkout (as this project's CI lays it)."""
    chosen = [Path(os.environ[TOKENIZERS_ENV])] if os.environ.get(TOKENIZERS_ENV) else []
    return [*chosen, REPO / DEFAULT_OUT / "tokenizers", REPO.parent / "shared" / "tokenizers"]


@dataclass(frozen=True)
class Asset:
    name: str
    how_to_get: str
    searched: Callable[[], list[Path]] = list

    def skip_reason(self, missing: str) -> str:
        return f"needs {self.name}: {missing} not found"

    def missing_in(self, reason: str) -> str | None:
        """What a skip reason of this asset says is missing; None for any other reason."""
        head, tail = f"needs {self.name}: ", " not found"
        return reason[len(head):-len(tail)] if reason.startswith(head) and reason.endswith(tail) else None


OFFICIAL_TOKENIZERS = Asset(
    "the official tokenizers",
    f"python -m golf.data.fineweb --tokenizers-only (run in the repository: it writes {DEFAULT_OUT}/tokenizers/), "
    f"or {TOKENIZERS_ENV}=<a folder with fineweb_<vocab>_bpe.model>", tokenizer_dirs)
CUDA = Asset("CUDA", "a machine with an NVIDIA GPU (make test keeps the machine's CUDA torch there)")
ASSETS = (OFFICIAL_TOKENIZERS, CUDA)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=CUDA.skip_reason("a CUDA device"))


def official_tokenizer(vocab: int) -> Path:
    """The official fineweb_<vocab>_bpe.model, or a skip that names the missing file (the summary says where
    it was looked for and how to get it)."""
    name = f"fineweb_{vocab}_bpe.model"
    found = next((d / name for d in tokenizer_dirs() if (d / name).is_file()), None)
    if found is None:
        pytest.skip(OFFICIAL_TOKENIZERS.skip_reason(name))
    return found


def pytest_terminal_summary(terminalreporter):
    """After the run: each missing asset, how many tests skipped for it, what was missing, where it was looked
    for and how to get it."""
    missing = defaultdict(list)
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        for asset in ASSETS:
            if asset.missing_in(reason) is not None:
                missing[asset].append(asset.missing_in(reason))
    if not missing:
        return
    terminalreporter.section("optional assets: checks that did not run")
    for asset, things in missing.items():
        count = f"{len(things)} test{'s' if len(things) > 1 else ''}"
        terminalreporter.write_line(f"{asset.name}: {count} skipped, not found: {', '.join(sorted(set(things)))}")
        if asset.searched():
            terminalreporter.write_line(f"    looked in: {', '.join(map(str, asset.searched()))}")
        terminalreporter.write_line(f"    to get it: {asset.how_to_get}")
