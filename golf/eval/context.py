"""The one input of every evaluator and test-time-training protocol: the val stream, the byte tables, the
window geometry and where this process runs (rank, device, precision)."""

import contextlib
from dataclasses import dataclass, replace

import torch

from golf.eval.bpb import ByteTables
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


def eval_context(val_tokens: torch.Tensor, tables: ByteTables, seq_len: int, bos_id: int, batch_seqs: int,
                 max_seqs: int, rt) -> EvalContext:
    """The context of one process of a run (`rt`: golf.utils.runtime.Runtime)."""
    return EvalContext(ValStream(val_tokens, bos_id=bos_id), tables, seq_len, bos_id, batch_seqs, max_seqs, rt.rank,
                       rt.world_size, rt.device, rt.autocast_dtype)
