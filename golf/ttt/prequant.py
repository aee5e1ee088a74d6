"""RESEARCH ONLY, never compliant: pre-quant TTT (PR #462 / #1550 / resouer #6).

The unquantized trained model is fine-tuned for E epochs on every val position, then exported with the
run's quant scheme, rebuilt from those bytes and scored on the same positions. Epoch e runs at
lr x (f + (1 - f) 0.5 (1 + cos(pi e / E))), f = ttt.lr_floor: PyTorch's CosineAnnealingLR(T_max=E,
eta_min=f lr) stepped once per epoch, as PRs #462 and #1550 ran it (f = 0.1), so the last epoch still
trains. Its forwards see fake-quantized weights exactly when `ttt.qat` says so, whatever late QAT left on
the trained model, so the training job and `python -m golf.ttt` run the same protocol. Every val token
feeds an update before it is scored (docs/rules.md#c3-score-before-update), which the ledger records, so
the compliance checks fail by construction. It works on a copy: the run's own model and artifact are
untouched.
"""

import copy

from golf.artifact import container
from golf.eval.bpb import BPBAccumulator
from golf.eval.context import EvalContext
from golf.eval.sliding import score_windows, shard, sliding_windows
from golf.quant.qat import set_fake_quant
from golf.quant.quantize import quantize
from golf.ttt.training import (
    RangeTrainer,
    build_optimizer,
    cosine,
    select_trainable,
    set_lr,
)
from golf.utils.compile import compile_model

PREQUANT_REASON = ("pre-quant TTT adapts on every val token before scoring it "
                   "(C3 of docs/rules.md#c3-score-before-update, PRs #1376/#1972); research only")


def run_prequant_ttt(float_model, ctx: EvalContext, cfg, stride: int, on_chunk=None) -> dict:
    """`cfg`: the whole run config (the export needs its quant and arch); `ctx` carries the ledger."""
    t = cfg.ttt
    model = copy.deepcopy(float_model)
    set_fake_quant(model, cfg.quant, t.qat)
    n = ctx.n_predictions
    groups = select_trainable(model, t)
    optimizer = build_optimizer(groups, t)
    runner = compile_model(model) if t.compile else model
    trainer = RangeTrainer(model, runner, groups, optimizer, t, t.seq_len or ctx.seq_len, ctx)
    for epoch in range(t.epochs):
        lr = set_lr(optimizer, t.lr, cosine(epoch / t.epochs, t.lr_floor))
        loss = trainer.train_range(ctx.val, 0, n, 1)
        ctx.ledger.tick()
        if on_chunk is not None:
            on_chunk(epoch, {"ttt/step": epoch, "ttt/lr": lr, "ttt/train_loss": loss, **trainer.snr.metrics("ttt/snr")})
    for p in model.parameters():
        p.requires_grad_(True)
    blob = quantize(model, cfg, cfg.budget.artifact_limit_bytes, ctx.autocast_dtype).blob
    state = container.unpack(blob, source="pre-quant TTT export").weights
    reloaded = copy.deepcopy(float_model)  # same storage dtypes and device as the run's model
    reloaded.load_state_dict(state, strict=True)
    acc = BPBAccumulator(ctx.device)
    score_windows(reloaded, shard(sliding_windows(n, ctx.seq_len, stride), ctx.rank, ctx.world_size), ctx, acc)
    acc.all_reduce()
    return {**acc.result(), "bytes_model": len(blob), "snr": trainer.snr_summary()}
