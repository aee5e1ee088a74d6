"""The val tokens behind a guard: every read by an adaptation or calibration goes through `read`, which
enters the token range actually returned in the legality ledger, so the score-first checks see what the
code read, not what a protocol says it reads.

Scorers read windows with `window` (inputs and targets of a window; what they score is entered by the
scorer from the mask it sums with). Nothing else may index the raw tokens.
Scorers charge each target `target_bytes` when the stream carries a byte sidecar (a transformed dataset such
as CaseOps: golf.data.byte_sidecar), the byte tables' count of the token otherwise. A read that starts at a
document's BOS does not count that token as read: document boundaries are public (protocols cut the
stream into documents at BOS before scoring), so a document's first adaptation needs no score from the
document before it, which another rank may own.
"""

import torch


class ValStream:
    def __init__(self, tokens: torch.Tensor, ledger=None, bos_id: int | None = None,
                 token_bytes: torch.Tensor | None = None):
        """`ledger`: a golf.eval.ledger.Ledger that reads are entered in, or None. `token_bytes`: the original-byte
        count of every token, index for index (a byte sidecar), or None."""
        self._tokens = tokens
        self._token_bytes = token_bytes
        self._host = tokens.numpy()  # host-side look-ups (the BOS test) without a tensor op
        self.ledger = ledger
        self.bos_id = bos_id

    def __len__(self) -> int:
        return self._tokens.numel()

    def window(self, start: int, end: int) -> torch.Tensor:
        """Tokens [start, end) for scoring (int64): inputs and targets of a window."""
        return self._tokens[start:end].to(torch.int64)

    @property
    def has_byte_sidecar(self) -> bool:
        return self._token_bytes is not None

    def target_bytes(self, start: int, end: int) -> torch.Tensor:
        """Original bytes of the targets of predictions [start, end) (tokens start+1 .. end), from the sidecar."""
        return self._token_bytes[start + 1 : end + 1].to(torch.int32)

    def read(self, start: int, end: int, purpose: str = "update") -> torch.Tensor:
        """Tokens [start, end) for an adaptation (`update`) or quantization (`calibration`), entered in the
        ledger as read at the current clock."""
        start, end = max(start, 0), min(end, len(self))
        tokens = self._tokens[start:end].to(torch.int64)
        first = start + 1 if end > start and self.bos_id is not None and self._host[start] == self.bos_id else start
        if self.ledger is not None and end > first:
            self.ledger.record(purpose, first, end)
        return tokens

    def bos_positions(self, n: int, bos_id: int) -> list[int]:
        """Indices of the BOS tokens among the first n (document starts; a structural read, not a score)."""
        return torch.nonzero(self._tokens[:n] == bos_id).flatten().tolist()

    def with_ledger(self, ledger) -> "ValStream":
        """The same tokens, reads entered in `ledger`."""
        return ValStream(self._tokens, ledger, self.bos_id, self._token_bytes)
