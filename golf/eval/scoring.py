"""The plain protocols as a run scores them: the non-overlapping and sliding evals, each on a context with
a fresh legality ledger, returning the BPB result with its seconds and the ledger's checks."""

import time

from golf.eval.context import EvalContext
from golf.eval.full import evaluate_full
from golf.eval.sliding import evaluate_sliding


def checked(ctx: EvalContext, result: dict, t0: float) -> dict:
    """`result` with its seconds since t0 and the checks of ctx's ledger (gathered over ranks)."""
    checks = ctx.ledger.gathered().checks(result["tokens"])
    return {**result, "seconds": time.perf_counter() - t0, "checks": checks}


def full_eval(model, ctx: EvalContext) -> dict:
    """The official non-overlapping eval, with its seconds and the ledger's checks."""
    t0, ctx = time.perf_counter(), ctx.with_ledger()
    return checked(ctx, evaluate_full(model, ctx), t0)


def sliding_eval(model, ctx: EvalContext, stride: int) -> dict:
    """The exact sliding eval, with its seconds and the ledger's checks."""
    t0, ctx = time.perf_counter(), ctx.with_ledger()
    return checked(ctx, evaluate_sliding(model, ctx, stride), t0)
