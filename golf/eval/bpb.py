"""Exact bits-per-byte accounting, as the official metric defines it.

    bytes(y | x) = base_bytes[y] + (has_leading_space[y] and not is_boundary[x])

where y is the scored target and x the input token at the same position. Control, unknown and
unused pieces are boundaries worth 0 bytes; byte-fallback pieces are worth 1 byte; other pieces are
worth the UTF-8 length of their text without the leading "▁", whose space byte is counted only after
a non-boundary token (so the first word of a document gets no space byte). Sums are float64.

An <unk> target adds its NLL and no bytes, as in the official metric; a tokenizer without byte fallback
(the older sp1024 models) maps every unseen character to it, so the result reports how many of the scored
targets were <unk> (`unk_targets`): a large count flatters the BPB.

A transformed dataset (CaseOps) counts bytes of the original text, which the tables of its tokenizer cannot
know: its val stream carries a per-token byte sidecar and scorers pass those counts as `target_bytes`.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

SPACE_MARK = "\u2581"


@dataclass
class ByteTables:
    base_bytes: torch.Tensor  # int16 [V]
    has_leading_space: torch.Tensor  # bool [V]
    is_boundary: torch.Tensor  # bool [V]
    is_unknown: torch.Tensor  # bool [V]: the <unk> piece

    def to(self, device) -> "ByteTables":
        return ByteTables(self.base_bytes.to(device), self.has_leading_space.to(device), self.is_boundary.to(device),
                          self.is_unknown.to(device))

    def target_bytes(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Bytes of the text each target token adds, given the input token at the same position."""
        space = self.has_leading_space[targets] & ~self.is_boundary[inputs]
        return self.base_bytes[targets].to(torch.int32) + space.to(torch.int32)


def build_byte_tables(sp, vocab_size: int) -> ByteTables:
    """Byte lookup tables from a SentencePiece model, sized max(tokenizer vocab, model vocab)."""
    sp_vocab = int(sp.vocab_size())
    size = max(sp_vocab, vocab_size)
    base_bytes = np.zeros(size, dtype=np.int16)
    has_leading_space = np.zeros(size, dtype=np.bool_)
    is_boundary = np.ones(size, dtype=np.bool_)
    is_unknown = np.zeros(size, dtype=np.bool_)
    for token_id in range(sp_vocab):
        is_unknown[token_id] = sp.is_unknown(token_id)
        if sp.is_control(token_id) or sp.is_unknown(token_id) or sp.is_unused(token_id):
            continue
        is_boundary[token_id] = False
        if sp.is_byte(token_id):
            base_bytes[token_id] = 1
            continue
        piece = sp.id_to_piece(token_id)
        if piece.startswith(SPACE_MARK):
            has_leading_space[token_id] = True
            piece = piece[1:]
        base_bytes[token_id] = len(piece.encode("utf-8"))
    return ByteTables(torch.from_numpy(base_bytes), torch.from_numpy(has_leading_space), torch.from_numpy(is_boundary),
                      torch.from_numpy(is_unknown))


class BPBAccumulator:
    """float64 sums of NLL (nats), scored tokens, bytes and <unk> targets; all-reduced once at the end."""

    def __init__(self, device):
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.token_count = torch.zeros((), dtype=torch.float64, device=device)
        self.byte_count = torch.zeros((), dtype=torch.float64, device=device)
        self.unk_count = torch.zeros((), dtype=torch.float64, device=device)

    def add(self, nll: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor, tables: ByteTables,
            scored: torch.Tensor | None = None, target_bytes: torch.Tensor | None = None) -> None:
        """Add every position, or those where the bool mask `scored` is set (masked sums, not boolean indexing,
        whose result size the host would have to wait for). `target_bytes`: each target's bytes from a byte
        sidecar, replacing the tables' count."""
        if target_bytes is None:
            target_bytes = tables.target_bytes(inputs, targets)
        nll, nbytes = nll.to(torch.float64), target_bytes.to(torch.float64)
        unk = tables.is_unknown[targets]
        if scored is None:
            self.loss_sum += nll.sum()
            self.token_count += targets.numel()
            self.byte_count += nbytes.sum()
            self.unk_count += unk.sum()
        else:
            self.loss_sum += torch.where(scored, nll, 0.0).sum()
            self.token_count += scored.sum()
            self.byte_count += torch.where(scored, nbytes, 0.0).sum()
            self.unk_count += (unk & scored).sum()

    def all_reduce(self) -> None:
        if dist.is_available() and dist.is_initialized():
            for t in (self.loss_sum, self.token_count, self.byte_count, self.unk_count):
                dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def result(self) -> dict:
        tokens, nbytes = self.token_count.item(), self.byte_count.item()
        val_loss = self.loss_sum.item() / tokens
        return {
            "val_loss": val_loss,
            "val_bpb": val_loss / math.log(2.0) * tokens / nbytes,
            "tokens": int(tokens),
            "bytes": int(nbytes),
            "unk_targets": int(self.unk_count.item()),
        }
