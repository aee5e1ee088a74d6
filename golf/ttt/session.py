"""Test-time training on a model rebuilt from the artifact: the protocols with their checks.

Used by the training job and by `python -m golf.ttt <job_dir>`, so a protocol gives the same numbers
either way. Each protocol runs on a context with a fresh ledger; its checks are computed from what the
scorer summed and what the val stream handed out. The legal protocols start from the artifact's weights;
`prequant` starts from the unquantized weights, is reported separately and is never compliant. Each
protocol's module is imported when it runs, so a record embeds only the protocol its config uses.
"""

import time

from golf.errors import GolfError
from golf.eval.context import EvalContext
from golf.eval.scoring import checked
from golf.eval.sliding import evaluate_sliding

DIAGNOSTIC_STRIDE = 64
LEGAL_MODES = ("stream", "lora", "phased_lora")  # prequant is research only


def test_time_train(model, ctx: EvalContext, ttt, stride: int, seed: int, on_chunk=None,
                    diagnose: bool = True, tilt=None) -> dict:
    """Run the legal protocol of `ttt` (the ttt config section) on `model`, the artifact's (adapted in place by
    the stream and phased protocols). `diagnose` adds the memorization diagnostic to a stream protocol's result
    (an extra sliding eval, not part of the score). `tilt`: the eval.ngram_tilt section, applied when enabled in
    the protocol's order (the stream, or the document queue), its precompute inside the protocol's seconds."""
    if ttt.mode not in LEGAL_MODES:
        raise GolfError(f"ttt.mode={ttt.mode} is not a legal protocol",
                        fix="a score needs stream, lora or phased_lora TTT")
    t0, ctx = time.perf_counter(), ctx.with_ledger()
    if tilt is not None and tilt.enabled:
        from golf.eval.ngram_tilt import protocol_tilt

        ctx = protocol_tilt(ctx, tilt, ttt)
    if ttt.mode == "stream":
        from golf.ttt.stream import run_stream_ttt

        out = run_stream_ttt(model, ctx, ttt, stride, on_chunk)
    elif ttt.mode == "lora":
        from golf.ttt.lora import run_lora_ttt

        out = run_lora_ttt(model, ctx, ttt, seed, on_chunk)
    else:
        from golf.ttt.phased import run_phased_lora_ttt

        out = run_phased_lora_ttt(model, ctx, ttt, seed, on_chunk)
    if ctx.tilt is not None:
        out["ngram_tilt"] = ctx.tilt.summary
    result = checked(ctx, out, t0)
    result.update(legal=True, compliant=all(v["pass"] for v in result["checks"].values()))
    if ttt.mode == "stream" and diagnose:
        result["memorization"] = memorization_diagnostic(model, ctx, out["val_bpb"])
    return result


def prequant_ttt(float_model, ctx: EvalContext, cfg, stride: int, on_chunk=None) -> dict:
    """Research only: pre-quant TTT from the unquantized weights (`cfg`: the whole run config, whose quant
    the adapted copy is exported with); never legal, never compliant."""
    from golf.ttt.prequant import PREQUANT_REASON, run_prequant_ttt

    t0, ctx = time.perf_counter(), ctx.with_ledger()
    result = checked(ctx, run_prequant_ttt(float_model, ctx, cfg, stride, on_chunk), t0)
    return {**result, "legal": False, "compliant": False, "reason": PREQUANT_REASON}


def score_ttt(pipeline, stride: int, on_chunk=None) -> tuple[dict, object]:
    """The run's protocol as its pipeline scores it (golf.pipeline): the legal one on a fresh reload of the
    artifact, pre-quant TTT on the trained unquantized weights; its final log lines; (result, adapted model)."""
    cfg = pipeline.cfg
    if cfg.ttt.mode == "prequant":
        result, adapted = pipeline.timed(lambda model: prequant_ttt(pipeline.model, pipeline.ctx, cfg, stride,
                                                                    on_chunk))
        pipeline.final_line(f"research_prequant_ttt_{cfg.ttt.name}", result)
        return result, adapted
    result, adapted = pipeline.timed(lambda model: test_time_train(model, pipeline.ctx, cfg.ttt, stride, cfg.seed,
                                                                   on_chunk, diagnose=False,
                                                                   tilt=cfg.eval.ngram_tilt))
    pipeline.final_line(f"final_{cfg.quant.name}_ttt_{cfg.ttt.name}", result)
    return result, adapted


def memorization_diagnostic(adapted, ctx: EvalContext, loop_bpb: float) -> dict:
    """PR #484: a stride-64 sliding eval of the adapted weights next to the TTT-loop BPB. Both see tokens
    the model has trained on by then, so the pair is a diagnostic, never a score: a loop BPB far below
    the sliding one means the loop profited from having just fit those tokens (memorization)."""
    stride = min(DIAGNOSTIC_STRIDE, ctx.seq_len)
    t0 = time.perf_counter()
    sliding = evaluate_sliding(adapted, ctx, stride)
    gap = sliding["val_bpb"] - loop_bpb
    return {"ttt_loop_bpb": loop_bpb, "sliding_adapted_bpb": sliding["val_bpb"], "stride": stride,
            "gap": gap, "reading": "memorization" if gap > 0 else "adaptation",
            "seconds": time.perf_counter() - t0}

