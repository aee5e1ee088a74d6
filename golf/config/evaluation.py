"""The evaluation config (`eval`): full or sliding windows, and the token n-gram tilt."""

from dataclasses import dataclass, field

from golf.config.choice import Choice


class EvalMode(Choice):
    full = "full"
    sliding = "sliding"


class TiltGate(Choice):
    prefix = "prefix"  # the gate reads the prefix's counts only (PR #2135's token expert)
    word_start = "word_start"  # PR #2018's within-word / word experts: the gate asks whether the target starts a
    #                            word, so the score is not a distribution given the prefix; always refused


@dataclass
class NgramTiltConfig:
    """The token n-gram tilt (PR #2135): where the last order - 1 tokens were followed by one token in at least
    `threshold` of their earlier occurrences, that token's logit gets +boost and the softmax is taken again."""

    enabled: bool = False
    order: int = 16  # the context is the previous order - 1 tokens
    boost: float = 2.625
    threshold: float = 0.8
    gate: TiltGate = TiltGate.prefix
    renormalize: bool = True  # false: the boost without a new softmax (probabilities sum past 1): refused


@dataclass
class EvalConfig:
    name: EvalMode = EvalMode.full
    seq_len: int = 0  # 0: the training sequence length
    stride: int = 0  # sliding: positions between windows; 0: seq_len (non-overlapping)
    batch_tokens: int = 524288
    max_seqs: int = 0  # 0: the whole val split; > 0 is a smoke test and is never compliant
    ngram_tilt: NgramTiltConfig = field(default_factory=NgramTiltConfig)
