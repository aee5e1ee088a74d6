"""The one input of every evaluator and test-time-training protocol: the val stream (with its byte sidecar when
the dataset has one), the byte tables, the window geometry and where this process runs (rank, device,
precision). `load_eval_context` builds it from a run's config, the same way for a run, a rescoring and a
record script."""

import contextlib
from dataclasses import dataclass, replace

import torch

from golf.config.derived import eval_seq_len
from golf.data.loader import load_validation_tokens
from golf.data.tokenizer import check_tokens_in_vocab, check_vocab, load_tokenizer
from golf.eval.bpb import ByteTables, build_byte_tables
from golf.eval.val_stream import ValStream


@dataclass(frozen=True)
class EvalContext:
    val: ValStream
    tables: ByteTables
    seq_len: int  # evaluation window length
    bos_id: int  # document start token (LoRA TTT cuts documents here)
    batch_seqs: int  # windows per forward pass on this rank (does not change a score)
    max_seqs: int = 0  # > 0: score only the first max_seqs x seq_len predictions (a smoke eval, never compliant)
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    autocast_dtype: torch.dtype | None = None
    tilt: object = None  # golf.eval.ngram_tilt.NgramTilt the scorers apply to their logits, or None

    @property
    def n_predictions(self) -> int:
        """Predictions to score: the whole stream, or the first max_seqs x seq_len of a capped smoke eval."""
        n = len(self.val) - 1
        return min(n, self.max_seqs * self.seq_len) if self.max_seqs > 0 else n

    def with_ledger(self) -> "EvalContext":
        """This context with a fresh ledger on its val stream (one per scored protocol)."""
        from golf.eval.ledger import Ledger  # only scoring that checks legality needs it

        return replace(self, val=self.val.with_ledger(Ledger(self.n_predictions, self.rank)))

    @property
    def ledger(self):
        """The val stream's golf.eval.ledger.Ledger, or None."""
        return self.val.ledger


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def load_eval_context(cfg, rt, batch_seqs: int) -> EvalContext:
    """The context of one process of a run (`cfg`: golf.config.schema.GolfConfig, `rt`:
    golf.utils.runtime.Runtime): tokenizer and byte tables, the val tokens checked against the vocabulary, and
    the byte sidecar when `data.val_bytes_pattern` names one. The shard reads are the caller's to name (a run's
    pipeline enters them as reader `val` in its data access log)."""
    d = cfg.data
    seq_len = eval_seq_len(cfg)
    sp = load_tokenizer(d.tokenizer_path)
    check_vocab(sp, cfg.arch.vocab_size, d.tokenizer_path)
    tables = build_byte_tables(sp, cfg.arch.vocab_size).to(rt.device)
    tokens = load_validation_tokens(d.val_pattern, seq_len)
    token_bytes = None
    if d.val_bytes_pattern:
        from golf.data.byte_sidecar import load_byte_sidecar  # only transformed datasets carry one

        token_bytes = load_byte_sidecar(d.val_bytes_pattern, d.val_pattern, seq_len)
    check_tokens_in_vocab(tokens.numpy(), cfg.arch.vocab_size, d.val_pattern)
    bos_id = int(sp.bos_id())
    return EvalContext(ValStream(tokens, bos_id=bos_id, token_bytes=token_bytes), tables, seq_len, bos_id, batch_seqs,
                       cfg.eval.max_seqs, rt.rank, rt.world_size, rt.device, rt.autocast_dtype)
