"""The val stream cut into documents, and the queue a document protocol takes them in.

Document d owns positions [bos_d, bos_{d+1}): its last position predicts the next document's BOS, so
documents tile the stream. Where the BOS tokens are is public structure (every protocol cuts at them before
scoring anything), so ordering documents by length reads no token a score has not revealed.

The queue decides what "already scored" means for everything that crosses documents (the phased global
step, the n-gram tilt's shared counts): a document's score may use what the queue put before it, never what
it puts after. `stream` keeps val order; `length` sorts documents by length (ties by position), cuts them into
batches of `batch_docs` and takes the longest batch first, as PR #1530 onwards do (similar lengths waste
little padding; longest first balances the ranks).
"""

import hashlib

from golf.eval.context import EvalContext


def documents(ctx: EvalContext) -> list[tuple[int, int]]:
    """Position ranges [start, end) of the documents, tiling [0, n)."""
    n = ctx.n_predictions
    starts = ctx.val.bos_positions(n, ctx.bos_id)
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [(s, e) for s, e in zip(starts, [*starts[1:], n]) if e > s]


def queue_batches(docs: list[tuple[int, int]], batch_docs: int, order: str) -> list[list[int]]:
    """Batches of document indices in the order they are scored."""
    if order == "stream":
        ids = list(range(len(docs)))
        return [ids[i : i + batch_docs] for i in range(0, len(ids), batch_docs)]
    by_length = sorted(range(len(docs)), key=lambda d: (docs[d][1] - docs[d][0], d))
    batches = [by_length[i : i + batch_docs] for i in range(0, len(by_length), batch_docs)]
    return sorted(batches, key=lambda b: -(docs[b[-1]][1] - docs[b[-1]][0]))  # stable: equal maxima keep order


def queue_order(ctx: EvalContext, cfg) -> list[tuple[int, int]]:
    """The documents' position ranges in the order the queue of `cfg` (the ttt config section) scores them."""
    docs = documents(ctx)
    return [docs[d] for batch in queue_batches(docs, cfg.lora_batch_docs, cfg.lora_queue) for d in batch]


def queue_record(docs: list[tuple[int, int]], batches: list[list[int]], order: str) -> dict:
    """What a result states about its queue: the rule, the sizes, and a digest of the document order."""
    flat = [d for batch in batches for d in batch]
    return {"order": order, "documents": len(docs), "batches": len(batches),
            "batch_docs": max((len(b) for b in batches), default=0), "first_documents": flat[:8],
            "sha256": hashlib.sha256(",".join(map(str, flat)).encode()).hexdigest()}
