"""Score-first per-document LoRA TTT, documents adapted side by side (PR #77; batched as PR #1530 onwards),
base weights frozen.

Documents (golf.ttt.documents) are taken from the queue `ttt.lora_queue` in batches of `ttt.lora_batch_docs`;
ranks take the queue's batches in turn. Every document of a batch is one row with its own adapters
(golf.ttt.lora_adapters): a low-rank path on every module whose name matches `ttt.lora_targets` and, with
`ttt.lora_head`, on the raw logits. A document's A is drawn from seed + its index and B starts at zero, so its
numbers depend neither on its batch nor on its rank.

A batch advances one chunk index at a time: chunk c of every document (`lora_chunk` positions, with up to
seq_len tokens of context from the same document) is scored under inference mode, then the adapters take
`epochs` Adam(W) steps on each document's mean loss over its chunk, on tokens read again through the val
stream (so the ledger sees every update's read after its score). A document's last chunk is scored, not
trained on. Each row's loss is its own mean and Adam works per element, so a document gets the updates it
would get alone (`lora_batch_docs=1` is the unbatched protocol). Adapters and optimizer state are fresh for
every batch (`lora_reset=document`) or carried on (`stream`: one document at a time, one process). The
adapters' per-layer gradient SNR is measured at every step, as in stream TTT, and logged once per batch.

The optimizer is `ttt.optimizer`: adamw = PR #77's Adam (betas (0.9, 0.95), eps 1e-10) with decoupled decay
`ttt.weight_decay`, or sgd with `ttt.momentum`. An adapter belongs to a module, so a block that depth
recurrence runs more than once (arch.recur_layers) uses the same adapter in every pass; PR #1530 gives each
virtual slot its own.
"""

import torch
import torch.nn.functional as F

from golf.data.loader import to_device
from golf.eval.bpb import BPBAccumulator
from golf.eval.context import EvalContext, autocast_context
from golf.logging.progress import Progress
from golf.optim.gradient_snr import GradientSNR
from golf.ttt.documents import documents, queue_batches, queue_record
from golf.ttt.lora_adapters import BatchedAdapters
from golf.ttt.training import forget_inference_caches

Chunk = tuple[int, int, int]  # (window start, chunk start, chunk end) positions; the window ends at the chunk's end


def document_chunks(start: int, end: int, chunk: int, seq_len: int) -> list[Chunk]:
    """Every chunk of the document [start, end), each with up to seq_len positions of the document as context."""
    return [(max(start, min(cs + chunk, end) - seq_len), cs, min(cs + chunk, end)) for cs in range(start, end, chunk)]


def run_lora_ttt(model, ctx: EvalContext, cfg, seed: int, on_chunk=None, pauses=None) -> dict:
    """Score-first batched per-document LoRA TTT (`cfg`: the ttt config section); `ctx` carries the ledger.
    `pauses`: {k: fn} calls fn() on every rank, adapters off, once the queue's first k batches are scored."""
    docs = documents(ctx)
    batches = queue_batches(docs, cfg.lora_batch_docs, cfg.lora_queue)
    ctx.ledger.lanes = docs  # each document is a pass of its own: the queue, not the stream, orders documents
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = BatchedAdapters(model, cfg.lora_targets, cfg.lora_rank, max(map(len, batches)), cfg.lora_head)
    snr = GradientSNR(adapters.layer_groups(model), cfg.snr_min, cfg.snr_max)
    runner = _DocumentBatch(model, ctx, cfg, adapters, snr, BPBAccumulator(ctx.device))
    mine = batches[ctx.rank :: ctx.world_size]
    progress = Progress(sum(map(len, mine)), f"ttt {cfg.name}", "documents", ctx.rank)
    try:
        for index, batch in enumerate(batches):
            if index % ctx.world_size == ctx.rank:  # ranks take the queue's batches in turn
                runner.run([docs[d] for d in batch], [seed + d for d in batch],
                           index == ctx.rank or cfg.lora_reset == "document")
                if on_chunk is not None:
                    metrics = snr.metrics("ttt/snr")
                    for d in batch:
                        on_chunk(d, {"ttt/step": d, "ttt/doc_tokens": docs[d][1] - docs[d][0], **metrics})
                progress.update(len(batch))
            if pauses and index + 1 in pauses:
                with adapters.paused():
                    pauses[index + 1]()
    finally:
        progress.close()
        adapters.remove()
        for p in model.parameters():
            p.requires_grad_(True)
    runner.acc.all_reduce()
    return {**runner.acc.result(), "documents": len(docs), "queue": queue_record(docs, batches, cfg.lora_queue),
            "snr": {**snr.summary(), "applied": False, "estimator": None}}


class _DocumentBatch:
    """Scores and adapts one batch of documents, chunk index by chunk index."""

    def __init__(self, model, ctx: EvalContext, cfg, adapters: BatchedAdapters, snr: GradientSNR,
                 acc: BPBAccumulator):
        self.model, self.ctx, self.cfg, self.adapters, self.snr, self.acc = model, ctx, cfg, adapters, snr, acc
        self.optimizer = None

    def run(self, ranges: list[tuple[int, int]], seeds: list[int], fresh: bool) -> None:
        cfg, ctx = self.cfg, self.ctx
        if fresh:
            self.adapters.reset(seeds)
            params = list(self.adapters.parameters())
            if cfg.optimizer == "sgd":
                self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                                 weight_decay=cfg.weight_decay)
            else:  # AdamW at weight_decay 0 is Adam; the records decay their LoRA weights
                self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-10,
                                                   weight_decay=cfg.weight_decay)
        plans = [document_chunks(s, e, cfg.lora_chunk, ctx.seq_len) for s, e in ranges]
        for c in range(max(map(len, plans))):
            active = [(row, plan[c]) for row, plan in enumerate(plans) if c < len(plan)]
            self._score(active)
            ctx.ledger.tick()
            trained = [(row, w) for row, w in active if w[2] < ranges[row][1] or cfg.lora_reset == "stream"]
            if trained:
                self._adapt(trained)
            ctx.ledger.tick()

    def _rows(self, active: list[tuple[int, Chunk]], read) -> tuple[torch.Tensor, ...]:
        """Inputs, targets and mask of every adapter row, windows left-aligned: the mask takes every target read
        past the context (the chunk's). Rows without a chunk stay empty; attention is causal, so right padding
        never reaches a masked position. Then the targets' bytes from the stream's byte sidecar, or None."""
        tokens = {row: read(ws, ce + 1) for row, (ws, _, ce) in active}
        width = max(len(t) - 1 for t in tokens.values())
        x = torch.zeros(self.adapters.rows, width, dtype=torch.int64)
        y = torch.zeros(self.adapters.rows, width, dtype=torch.int64)
        mask = torch.zeros(self.adapters.rows, width, dtype=torch.bool)
        nbytes = torch.zeros(self.adapters.rows, width, dtype=torch.int32) if self.ctx.val.has_byte_sidecar else None
        for row, (ws, cs, _) in active:
            n = len(tokens[row]) - 1
            x[row, :n], y[row, :n], mask[row, cs - ws : n] = tokens[row][:-1], tokens[row][1:], True
            if nbytes is not None:
                nbytes[row, :n] = self.ctx.val.target_bytes(ws, ws + n)
        return x, y, mask, nbytes

    def _nll(self, x: torch.Tensor, y: torch.Tensor, starts: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token NLL in fp32 over the adapted, soft-capped logits (GPT.forward's reduction='none'); given the
        rows' window `starts`, under the context's n-gram tilt (scoring only: the adapters train on the model's)."""
        with autocast_context(self.ctx.device, self.ctx.autocast_dtype):
            logits = self.adapters.logits(self.model, x)
        if starts is not None:
            return self.ctx.tilt.nll(logits, y, starts)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none").view_as(y)

    def _score(self, active: list[tuple[int, Chunk]]) -> None:
        ctx = self.ctx
        x, y, mask, nbytes = self._rows(active, ctx.val.window)
        first, count = mask.to(torch.int8).argmax(dim=1).tolist(), mask.sum(dim=1).tolist()
        starts = torch.zeros(self.adapters.rows, dtype=torch.int64)
        for row, (ws, _, _) in active:  # what the sums take, read back from the mask they are taken with
            ctx.ledger.record("score", ws + first[row], ws + first[row] + count[row])
            starts[row] = ws
        x, y, mask = (to_device(t, ctx.device) for t in (x, y, mask))
        nbytes = None if nbytes is None else to_device(nbytes, ctx.device)
        self.model.eval()
        with torch.inference_mode():
            self.acc.add(self._nll(x, y, starts if ctx.tilt is not None else None), x, y, ctx.tables, mask, nbytes)

    def _adapt(self, trained: list[tuple[int, Chunk]]) -> None:
        """`epochs` steps on the sum over rows of each row's mean loss on its chunk (its context is no target)."""
        ctx = self.ctx
        x, y, mask = (to_device(t, ctx.device) for t in self._rows(trained, ctx.val.read)[:3])
        forget_inference_caches(self.model)
        self.model.train()
        weights = mask / mask.sum(dim=1, keepdim=True).clamp(min=1)
        for _ in range(self.cfg.epochs):
            self.optimizer.zero_grad(set_to_none=True)
            (self._nll(x, y) * weights).sum().backward()
            self.snr.measure()
            self.optimizer.step()
