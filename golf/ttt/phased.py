"""Phased TTT (PR #1610; three phases in PR #1626): batched per-document LoRA TTT over the queue (golf.ttt.lora),
paused now and then for a global SGD step of the base weights over documents already scored.

The first `ttt.phase_docs` documents of the queue are cut into `ttt.phases` shares at the document counts
phase_docs * k // phases, as the records cut them. Phase k pauses LoRA TTT once the batch holding its last
document is scored (on every rank: ranks take the queue's batches in turn) and trains the base weights over
exactly the first phase_docs * k // phases documents of the queue: phases 1..k's documents, cumulative as in PR
#1626; documents of the same batches past the share wait for the next phase, as the records' logs show (`pd` >
`gd`). Their tokens are read through the val stream after the ledger's clocks are aligned over ranks, so the
ledger proves every read came after its score; each document is read with its last target (the next BOS) and
the documents are concatenated in queue order, as the records do. The step: SGD at `ttt.phase_lr` with
`ttt.momentum` and no weight decay, chunks of `ttt.chunk_tokens` positions on one cosine over the chunks whose
last chunk (at LR 0) is skipped, `ttt.phase_epochs` epochs per chunk, sequences of the eval length,
`ttt.batch_seqs` of them per step over all ranks (gradients summed), clipped at `ttt.grad_clip_norm`. Which base
weights move is the freezing options' choice; by default all of them, AsymLogit's two caps included
(golf.models.asym_softcap: frozen in training, moved only by TTT). LoRA TTT then goes on with the rest of the
queue on the updated weights, with fresh adapters per batch as before.

A document's score depends only on documents the queue put before it, and nothing is trained on before it is
scored. Nothing is compiled, so there is no compile warm-up to feed: no val token is touched before its score.
Where golf differs from the records: the pause points are fixed by the queue instead of by which rank finishes
first (so the numbers do not depend on the world size), a short last sequence of a chunk is trained on instead of
dropped, and a global step with a single chunk trains on it (the records would skip it).
"""

import copy
import time

import torch

from golf.eval.context import EvalContext
from golf.eval.val_stream import ValStream
from golf.ttt.documents import documents, queue_batches
from golf.ttt.lora import run_lora_ttt
from golf.ttt.training import RangeTrainer, build_optimizer, cosine, select_trainable, set_lr


def phase_pauses(batches: list[list[int]], phases: int, phase_docs: int) -> dict[int, list[int]]:
    """{batches of the queue scored: the document counts of the global steps run then}, in queue order."""
    n_docs = sum(map(len, batches))
    share = min(phase_docs, n_docs)
    pauses: dict[int, list[int]] = {}
    scored, end = 0, 0
    for count in (share * k // phases for k in range(1, phases + 1)):
        while scored < count:
            scored += len(batches[end])
            end += 1
        if count > 0:
            pauses.setdefault(end, []).append(count)
    return pauses


def run_phased_lora_ttt(model, ctx: EvalContext, cfg, seed: int, on_chunk=None) -> dict:
    """Score-first phased TTT (`cfg`: the ttt config section); `ctx` carries the ledger."""
    docs = documents(ctx)
    queue = [d for batch in queue_batches(docs, cfg.lora_batch_docs, cfg.lora_queue) for d in batch]
    steps = []

    def pause(counts: list[int]):
        def run() -> None:
            for count in counts:
                steps.append(global_step(model, ctx, cfg, [docs[d] for d in queue[:count]]))

        return run

    plan = phase_pauses(queue_batches(docs, cfg.lora_batch_docs, cfg.lora_queue), cfg.phases, cfg.phase_docs)
    out = run_lora_ttt(model, ctx, cfg, seed, on_chunk, {end: pause(counts) for end, counts in plan.items()})
    return {**out, "phases": steps}


def global_step(model, ctx: EvalContext, cfg, scored: list[tuple[int, int]]) -> dict:
    """SGD of the base weights over the `scored` documents (position ranges, in queue order), every rank taking a
    share of each batch; the base weights are frozen again afterwards."""
    t0 = time.perf_counter()
    ctx.ledger.align()  # the reads below come after every rank's scores so far
    tokens = torch.cat([ctx.val.read(start, end + 1) for start, end in scored])
    step_cfg = copy.copy(cfg)  # a dataclass in golf, a plain namespace in a record's script
    step_cfg.optimizer, step_cfg.lr, step_cfg.epochs, step_cfg.weight_decay = "sgd", cfg.phase_lr, cfg.phase_epochs, 0.0
    groups = select_trainable(model, step_cfg)
    optimizer = build_optimizer(groups, step_cfg)
    trainer = RangeTrainer(model, model, groups, optimizer, step_cfg, cfg.seq_len or ctx.seq_len, ctx)
    concatenated = ValStream(tokens)  # its reads were entered in the ledger above
    positions = tokens.numel() - 1
    chunks = [(a, min(a + cfg.chunk_tokens, positions)) for a in range(0, positions, cfg.chunk_tokens)]
    losses = []
    for index, (a, b) in enumerate(chunks[:-1] or chunks):  # the cosine reaches 0 at the last chunk
        set_lr(optimizer, cfg.phase_lr, cosine(index / max(len(chunks) - 1, 1), cfg.lr_floor))
        losses.append(trainer.train_range(concatenated, a, b, cfg.phase_epochs))
    for p in model.parameters():
        p.requires_grad_(False)
    ctx.ledger.tick()
    return {"documents": len(scored), "tokens": positions, "chunks": len(losses),
            "train_loss": losses[-1] if losses else None, "seconds": time.perf_counter() - t0}
