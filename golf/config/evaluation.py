"""The evaluation config (`eval`): full or sliding windows."""

from dataclasses import dataclass

from golf.config.choice import Choice


class EvalMode(Choice):
    full = "full"
    sliding = "sliding"


@dataclass
class EvalConfig:
    name: EvalMode = EvalMode.full
    seq_len: int = 0  # 0: the training sequence length
    stride: int = 0  # sliding: positions between windows; 0: seq_len (non-overlapping)
    batch_tokens: int = 524288
    max_seqs: int = 0  # 0: the whole val split; > 0 is a smoke test and is never compliant
