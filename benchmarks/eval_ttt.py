"""Evaluation and score-first TTT speed: golf's code vs a plain PyTorch loop, extrapolated to the
official validation set on 8 GPUs against the 600 s evaluation budget.

    python -m benchmarks.eval_ttt +experiment=cpu_demo [overrides] [--modes full,sliding,ttt]
        [--max-seqs 64] [--stride 64] [--repeats 2] [--job DIR]

Modes: `full` (non-overlapping sequences), `sliding` (exact sliding windows at --stride) and `ttt` (the
configured score-first protocol; `ttt=sgd` if the config has none). Each mode runs golf's real code path
(golf.eval / golf.ttt) and, for the plain evals and the stream protocols, a minimal plain loop doing the same
work on the same model: the same windows, forwards, backward passes, clipping and optimizer steps on the same
trainable parameters, with no ledger, no SNR statistics, no logging. The document protocols (`ttt=lora_batched`,
`ttt=phased_lora`) have no plain twin: they are timed alone. `eval.ngram_tilt.enabled=true` tilts golf's
sliding eval and TTT (the plain loops stay untilted). The model is `--job DIR`'s artifact, or a fresh
initialisation of the config (speed does not depend on the weights).

Order: golf's first pass runs cold (the process compiles into a fresh inductor cache unless
TORCHINDUCTOR_CACHE_DIR names one), an untimed plain pass warms the plain loop, then the repeats alternate
the two (ABBA) from the same initial weights and report medians.

Stream TTT is timed chunk by chunk, because its first chunk carries the one-time costs (with ttt.compile,
compiling the training graph): the steady rate is the predictions of the trained chunks after the first
over their seconds; the one-time cost is what the first chunk took beyond that rate (cold: golf's first
pass; warm: the repeats' median, as with a reused compile cache). golf/plain compares steady seconds (both
loops compile when the config does), so compile-time noise cannot hide the framework's overhead.

Extrapolation: seconds on the official sp1024 val set (62,021,632 predictions) sharded over 8 such devices
= cold one-time cost + the n-gram tilt's precompute x 62,021,632 / predictions + 62,021,632 / (8 x steady
predictions/s). The one-time cost (compiling) is paid once; the tilt's precompute walks the whole val on every
rank, so it grows with the val and not with the devices; the rest is sharded: eval windows, TTT chunks,
document batches and phased TTT's global steps (which train on the same share of the val as here: the
global steps' seconds are part of the steady rate). For eval the one-time cost is 0 and the rate is the whole
pass's. golf shards eval and TTT across ranks with no repeated work, so this assumes linear scaling and ignores
the all-reduces (a lower bound on 8 real GPUs).
Results: benchmarks/results/eval_ttt.{jsonl,md}.
"""

import argparse
import atexit
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.common import device_name, load_config, peak_memory_mb, record, sync
from golf.config.arch import ArchConfig
from golf.config.derived import eval_batch_seqs
from golf.eval.context import EvalContext, autocast_context, load_eval_context
from golf.eval.full import evaluate_full
from golf.eval.ngram_tilt import with_tilt
from golf.eval.sliding import evaluate_sliding, sliding_windows
from golf.models.layers import apply_baseline_precision
from golf.models.registry import build_model, load_model
from golf.ttt.session import test_time_train
from golf.ttt.stream import chunk_windows
from golf.ttt.training import select_trainable
from golf.utils.compile import compile_model
from golf.utils.runtime import seed_everything, setup_runtime

OFFICIAL_VAL_PREDICTIONS = 62_021_632
EVAL_BUDGET_S = 600.0
GPUS = 8
DOCUMENT_MODES = ("lora", "phased_lora")  # no plain twin


@dataclass
class BenchInputs:
    """golf's eval context, the run config, and the raw val tokens the plain loop indexes directly."""

    ctx: EvalContext
    cfg: object
    val: torch.Tensor


def make_model(cfg, rt, job: Path | None) -> torch.nn.Module:
    seed_everything(cfg.seed)
    model = (load_model(job / "artifact" / "model.golf", torch.device("cpu"), arch_type=ArchConfig) if job
             else build_model(cfg.arch))
    if rt.autocast_dtype == torch.bfloat16:
        apply_baseline_precision(model)
    return model.to(rt.device)


def _forward_nll(model, x, y, rt) -> torch.Tensor:
    with autocast_context(rt.device, rt.autocast_dtype):
        return model(x, y, reduction="none")


def _window_batch(windows, val, seq_len, device):
    x = torch.zeros(len(windows), seq_len, dtype=torch.int64)
    y = torch.zeros(len(windows), seq_len, dtype=torch.int64)
    for row, w in enumerate(windows):
        chunk = val[w.start : w.start + w.length + 1].to(torch.int64)
        x[row, : w.length], y[row, : w.length] = chunk[:-1], chunk[1:]
    return x.to(device), y.to(device)


def plain_score(model, windows, val, tables, seq_len, batch_seqs, rt) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of NLL and of bytes over the windows' scored positions."""
    loss = torch.zeros((), dtype=torch.float64, device=rt.device)
    nbytes = torch.zeros((), dtype=torch.float64, device=rt.device)
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(windows), batch_seqs):
            batch = windows[i : i + batch_seqs]
            x, y = _window_batch(batch, val, seq_len, rt.device)
            nll = _forward_nll(model, x, y, rt)
            for row, w in enumerate(batch):
                span = slice(w.score_from, w.length)
                loss += nll[row, span].double().sum()
                nbytes += tables.target_bytes(x[row, span], y[row, span]).double().sum()
    return loss, nbytes


def plain_optimizer(model, t) -> tuple[torch.optim.Optimizer, list]:
    """The configured optimizer over the parameters golf's TTT trains (its freezing options decide)."""
    select_trainable(model, t)
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay), params
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, fused=params[0].is_cuda), params


def plain_train(model, runner, optimizer, params, val, a, b, seq_len, t, rt) -> None:
    model.train()
    starts = list(range(a, b - seq_len + 1, seq_len))
    for _ in range(t.epochs):
        for i in range(0, len(starts), t.batch_seqs):
            rows = torch.stack([val[s : s + seq_len + 1].to(torch.int64) for s in starts[i : i + t.batch_seqs]])
            rows = rows.to(rt.device)
            with autocast_context(rt.device, rt.autocast_dtype):
                loss = runner(rows[:, :-1], rows[:, 1:])
            loss.backward()
            if t.grad_clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def stream_chunks(inputs: BenchInputs, stride: int) -> list[list]:
    ctx = inputs.ctx
    return chunk_windows(sliding_windows(ctx.n_predictions, ctx.seq_len, stride), inputs.cfg.ttt.chunk_tokens)


def run_plain(mode, model, inputs: BenchInputs, stride: int) -> tuple[float, list[float]]:
    """Seconds of the whole pass and, for TTT, the seconds at the end of every chunk."""
    c, rt, val, seq_len = inputs.cfg, inputs.ctx, inputs.val, inputs.ctx.seq_len
    stamps = []
    sync(rt.device)
    t0 = time.perf_counter()
    if mode in ("full", "sliding"):
        windows = sliding_windows(inputs.ctx.n_predictions, seq_len, seq_len if mode == "full" else stride)
        plain_score(model, windows, val, inputs.ctx.tables, seq_len, inputs.ctx.batch_seqs, rt)
    else:
        optimizer, params = plain_optimizer(model, c.ttt)
        runner = compile_model(model) if c.ttt.compile else model
        chunks = stream_chunks(inputs, stride)
        for index, chunk in enumerate(chunks):
            plain_score(model, chunk, val, inputs.ctx.tables, seq_len, inputs.ctx.batch_seqs, rt)
            if index < len(chunks) - 1:
                plain_train(model, runner, optimizer, params, val, chunk[0].scored[0], chunk[-1].scored[1],
                            c.ttt.seq_len or seq_len, c.ttt, rt)
            sync(rt.device)
            stamps.append(time.perf_counter() - t0)
    sync(rt.device)
    return time.perf_counter() - t0, stamps


def run_golf(mode, model, inputs: BenchInputs, stride: int) -> tuple[float, list[float], dict]:
    """Like run_plain, plus golf's result (a context with a ledger: golf's accounting is part of its cost)."""
    c, rt, ctx = inputs.cfg, inputs.ctx, inputs.ctx.with_ledger()
    stamps = []

    def stamp(index, metrics):
        sync(rt.device)
        stamps.append(time.perf_counter() - t0)

    sync(rt.device)
    t0 = time.perf_counter()
    tilt = c.eval.ngram_tilt
    if mode == "full":
        out = evaluate_full(model, ctx)
    elif mode == "sliding":
        tilted = with_tilt(ctx, tilt) if tilt.enabled else ctx  # the precompute inside the timer, as a run counts it
        out = evaluate_sliding(model, tilted, stride)
        if tilted.tilt is not None:
            out["ngram_tilt"] = tilted.tilt.summary
    else:
        out = test_time_train(model, inputs.ctx, c.ttt, stride, c.seed, on_chunk=stamp, diagnose=False, tilt=tilt)
    sync(rt.device)
    return time.perf_counter() - t0, stamps, out


def steady_state(stamps: list[float], chunk_predictions: list[int]) -> tuple[float, float]:
    """(steady seconds, one-time seconds) of a stream pass from its per-chunk end times: the steady part is
    the trained chunks after the first (the last chunk is only scored); the first chunk's excess over the
    steady rate is the one-time cost."""
    steady_s = stamps[-2] - stamps[0]
    rate = sum(chunk_predictions[1:-1]) / steady_s
    return steady_s, stamps[0] - chunk_predictions[0] / rate


def tilt_seconds(out: dict | None) -> float:
    return out["ngram_tilt"]["precompute_s"] if out and "ngram_tilt" in out else 0.0


def one_pass(which: str, mode: str, inputs: BenchInputs, args, chunk_predictions: list[int]) -> tuple[tuple, dict]:
    """((total s, steady s, one-time s), golf's result or None) of one pass from the initial weights. The one-time
    seconds include the n-gram tilt's precompute (the stream protocols: in their first chunk)."""
    model = make_model(inputs.cfg, inputs.ctx, args.job)
    if which == "plain":
        (seconds, stamps), out = run_plain(mode, model, inputs, args.stride), None
    else:
        seconds, stamps, out = run_golf(mode, model, inputs, args.stride)
    if mode == "ttt" and inputs.cfg.ttt.mode == "stream":
        return (seconds, *steady_state(stamps, chunk_predictions)), out
    return (seconds, seconds - tilt_seconds(out), tilt_seconds(out)), out


def time_mode(mode: str, inputs: BenchInputs, args) -> tuple[dict, float, dict, int]:
    """Every repeat's timings per loop, golf's cold one-time seconds, its result, and the steady predictions."""
    t = inputs.cfg.ttt
    chunk_predictions = [sum(w.scored[1] - w.scored[0] for w in chunk) for chunk in stream_chunks(inputs, args.stride)]
    stream = mode == "ttt" and t.mode == "stream"
    if mode == "ttt" and t.mode not in ("stream", *DOCUMENT_MODES):
        raise SystemExit(f"ttt={t.name} is not a legal protocol to time; use ttt=sgd, adamw, ..., lora_batched or "
                         f"phased_lora")
    if stream and len(chunk_predictions) < 3:
        raise SystemExit(f"stream TTT has {len(chunk_predictions)} chunks here; the steady rate needs at least 3: "
                         f"raise --max-seqs or lower ttt.chunk_tokens")
    plain = not (mode == "ttt" and t.mode in DOCUMENT_MODES)
    (_, _, cold_one_time_s), result = one_pass("golf", mode, inputs, args, chunk_predictions)
    if plain:
        one_pass("plain", mode, inputs, args, chunk_predictions)  # untimed: the plain loop's first-call costs
    runs = {"golf": [], "plain": []}
    for i in range(args.repeats):
        for which in (("plain", "golf") if i % 2 == 0 else ("golf", "plain")):
            if which == "golf" or plain:
                runs[which].append(one_pass(which, mode, inputs, args, chunk_predictions)[0])
    steady_predictions = sum(chunk_predictions[1:-1]) if stream else result["tokens"]
    return runs, cold_one_time_s, result, steady_predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="full,sliding,ttt")
    parser.add_argument("--max-seqs", type=int, default=64, help="val sequences to time (0: the whole split)")
    parser.add_argument("--stride", type=int, default=64, help="sliding and TTT window stride")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--job", type=Path, help="time this finished job's artifact instead of a fresh model")
    args, overrides = parser.parse_known_args()
    # A fresh compile cache, so the one-time cost is what a fresh machine pays (set the variable to reuse one).
    compile_cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or "fresh"
    if compile_cache == "fresh":
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="golf-bench-inductor-")
        atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)
    has_ttt = any(o.startswith("ttt=") for o in overrides)
    cfg = load_config([*overrides, *([] if has_ttt else ["ttt=sgd"]), f"eval.max_seqs={args.max_seqs}",
                       f"eval.stride={args.stride}"])
    rt = setup_runtime(cfg.train)
    ctx = load_eval_context(cfg, rt, eval_batch_seqs(cfg, rt.world_size))
    seq_len = ctx.seq_len
    inputs = BenchInputs(ctx, cfg, ctx.val.window(0, len(ctx.val)))
    device = device_name(rt.device)
    for mode in args.modes.split(","):
        runs, cold_one_time_s, result, steady_predictions = time_mode(mode, inputs, args)
        golf_s, golf_steady_s, one_time_s = (statistics.median(v) for v in zip(*runs["golf"]))
        plain_s, plain_steady_s, plain_one_time_s = ((statistics.median(v) for v in zip(*runs["plain"]))
                                                     if runs["plain"] else (None, None, None))
        predictions = result["tokens"]
        per_s = steady_predictions / golf_steady_s
        tilt_s = tilt_seconds(result)  # every rank walks the whole val
        official_s = (max(cold_one_time_s - tilt_s, 0.0) + tilt_s * OFFICIAL_VAL_PREDICTIONS / predictions
                      + OFFICIAL_VAL_PREDICTIONS / (GPUS * per_s))
        row = {
            "bench": "eval_ttt", "mode": mode, "device": device, "torch": torch.__version__, "overrides": overrides,
            "arch": f"{cfg.arch.name} {cfg.arch.num_layers}x{cfg.arch.model_dim}", "seq_len": seq_len,
            "stride": seq_len if mode == "full" else args.stride,
            "ttt": cfg.ttt.name if mode == "ttt" else None, "compiled": bool(mode == "ttt" and cfg.ttt.compile),
            "ngram_tilt": cfg.eval.ngram_tilt.enabled and mode != "full", "ngram_tilt_s": round(tilt_s, 3),
            "phases_s": round(sum(p["seconds"] for p in result.get("phases", [])), 3),
            "predictions": predictions, "golf_s": round(golf_s, 3), "plain_s": _rounded(plain_s),
            "steady_predictions": steady_predictions, "golf_steady_s": round(golf_steady_s, 3),
            "plain_steady_s": _rounded(plain_steady_s), "cold_one_time_s": round(cold_one_time_s, 3),
            "warm_one_time_s": round(one_time_s, 3), "plain_warm_one_time_s": _rounded(plain_one_time_s),
            "compile_cache": compile_cache,
            "framework_over_plain": round(golf_steady_s / plain_steady_s, 4) if plain_steady_s else None,
            "runs_steady_s": {which: [round(r[1], 3) for r in values] for which, values in runs.items()},
            "predictions_per_s": round(per_s), "peak_memory_mb": round(peak_memory_mb(rt.device)),
            "official_val_s_on_8": round(official_s, 1), "fits_600s": official_s <= EVAL_BUDGET_S,
            "val_bpb": result["val_bpb"], "job": str(args.job) if args.job else None,
        }
        what = f"ttt={row['ttt']}{' compiled' if row['compiled'] else ''}" if mode == "ttt" else mode
        what += " + n-gram tilt" if row["ngram_tilt"] else ""
        record("eval_ttt", row,
               "| device | arch | mode | seq/stride | predictions | golf s | plain s | golf/plain | one-time s "
               "| predictions/s | official val on 8 devices | within 600 s |\n"
               "|---|---|---|---|---|---|---|---|---|---|---|---|\n",
               f"| {device} | {row['arch']} | {what} | {seq_len}/{row['stride']} | {predictions:,} | {golf_s:.2f} | "
               f"{_shown(plain_s, '.2f')} | {_shown(row['framework_over_plain'], '.3f')} | "
               f"{max(cold_one_time_s, 0.0):.1f} | "
               f"{row['predictions_per_s']:,} | {official_s:,.0f} s | {'yes' if row['fits_600s'] else 'no'} |")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _shown(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
