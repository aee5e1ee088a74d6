"""Document-isolated attention: a position attends only to earlier positions of its own document.

A BOS token starts a document, so the document of position t is the number of BOS tokens at or before
t (positions before the first BOS of a window form one more document). The attention mask is

    allowed[b, i, j] = (j <= i) and (doc[b, j] == doc[b, i])

the dense form of the records' variable-length attention (flash-attn varlen over BOS-delimited
segments, 2026-04-10 on): packed documents never see each other, in training and at evaluation.
"""

import torch


def document_ids(ids: torch.Tensor, bos_id: int) -> torch.Tensor:
    """[B, T] -> [B, T]: the index of each position's document within its row."""
    return torch.cumsum((ids == bos_id).to(torch.int32), dim=1)


def document_causal_mask(ids: torch.Tensor, bos_id: int) -> torch.Tensor:
    """[B, T] token ids -> [B, 1, T, T] bool, True where query i may attend key j (broadcasts over heads)."""
    doc = document_ids(ids, bos_id)
    t = ids.size(1)
    causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
    return (causal & (doc[:, :, None] == doc[:, None, :]))[:, None]
