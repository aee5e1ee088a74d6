"""The limits config (`budget`) and how the counted code is written (`export`)."""

from dataclasses import dataclass

from golf.config.choice import Choice


@dataclass
class BudgetConfig:
    name: str = "record_8xh100"
    train_seconds: float = 600.0  # 0: no wall-clock cap
    eval_seconds: float = 600.0
    devices: int = 8  # devices the time caps are for; eval time measured on fewer is extrapolated to these
    artifact_limit_bytes: int = 16_000_000
    enforce_artifact_limit: bool = True
    check_estimate: bool = True  # refuse before training when the estimated artifact exceeds the limit


class CodeFormat(Choice):
    plain = "plain"  # train_gpt.py with golf's modules verbatim
    lzma = "lzma"  # a self-extracting wrapper around the minified script, lzma-compressed (what records ship)
    brotli = "brotli"  # the same with brotli (needs the brotli package to run)


@dataclass
class ExportConfig:
    code: CodeFormat = CodeFormat.lzma  # how the run's train_gpt.py (its counted code) is written
