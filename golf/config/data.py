"""The data config (`data`): shards and tokenizer."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class DataConfig:
    name: str = "demo"
    root: str = ""
    train_pattern: str = "${.root}/fineweb_train_*.bin"
    val_pattern: str = "${.root}/fineweb_val_*.bin"
    # per-token original-byte sidecar aligned with val_pattern (golf.data.byte_sidecar, CaseOps); empty: none
    val_bytes_pattern: str = ""
    tokenizer_path: str = "${.root}/tokenizer.model"
    vocab_size: int = 1024
    sha256: Optional[str] = None  # filled in for data=demo when the cache is built
    disjoint_check_tokens: int = 1_000_000  # tokens of each train shard compared with the val documents
