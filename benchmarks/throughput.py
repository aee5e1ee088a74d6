"""Training throughput of golf's loop vs a plain PyTorch loop of the identical model.

    python -m benchmarks.throughput +experiment=cpu_demo [overrides] [--steps 40] [--repeats 3]

Both loops train the same model (same init, same optimizer split) on the same data for the same
number of steps; golf's loop is the real Trainer (loader, schedules, checkpointing, logging hooks),
the plain loop (plain_steps) is the minimal forward/backward/step over pre-loaded batches
(tests/test_framework_overhead.py checks op for op that the Trainer adds only scalar bookkeeping to it).
One untimed plain run warms the device, then repeats alternate the loops (ABBA) so machine drift hits
both; every repeat's ms/step is kept in the JSON line (runs_ms) beside the medians. framework/plain is
golf's own overhead.
With compilation on (train.compile=on, the default on CUDA) a third variant, the plain loop in eager
mode, gives the compiled vs eager speed-up. Also reported: tokens/s, peak memory, the data loader's
headroom (step time / time the loader alone needs for one step's batches) and, on CUDA, model FLOPs
utilisation from the FLOPs counted on the config's model (golf.utils.flops) against the device's
dense bf16 peak.
Results: benchmarks/results/throughput.{jsonl,md}.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import (
    device_name,
    golf_trainer,
    golf_training_setup,
    load_config,
    peak_memory_mb,
    record,
    sync,
    train_loader,
)
from golf.checkpoint import Checkpointer
from golf.config.derived import grad_accum_steps
from golf.utils.flops import peak_flops, train_flops_per_token
from golf.utils.runtime import setup_runtime


def time_framework(cfg, rt, steps: int) -> float:
    model, runner, optimizers = golf_training_setup(cfg, rt, rt.compile)
    with tempfile.TemporaryDirectory() as job_dir:  # real checkpointing, as in a run
        trainer = golf_trainer(cfg, rt, model, runner, optimizers, Checkpointer(Path(job_dir), "benchmark", rt))
        trainer.warmup()
        return 1000.0 * trainer.run().train_seconds / steps


def plain_steps(model, runner, optimizers: dict, step_batches: list, autocast: dict, step_numbers) -> None:
    """The minimal loop: per step, forward/backward over its micro-batches, every optimizer steps, grads cleared.
    `step_numbers` are what the model's on_train_step sees (the Trainer's step count, so the same model state)."""
    for step, micro_batches in zip(step_numbers, step_batches, strict=True):
        model.on_train_step(step)
        for x, y in micro_batches:
            with torch.autocast(**autocast):
                loss = runner(x, y)
            (loss / len(micro_batches)).backward()
        for opt in optimizers.values():
            opt.step()
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)


def time_plain(cfg, rt, steps: int, compiled: bool) -> float:
    model, runner, optimizers = golf_training_setup(cfg, rt, compiled)
    t, accum = cfg.train, grad_accum_steps(cfg, 1)
    loader = train_loader(cfg, rt)
    batches = [[loader.next_batch(t.batch_tokens, t.seq_len, accum) for _ in range(accum)]
               for _ in range(steps + t.warmup_steps)]
    autocast = dict(device_type=rt.device.type, dtype=torch.bfloat16, enabled=rt.autocast_dtype is not None)
    plain_steps(model, runner, optimizers, batches[: t.warmup_steps], autocast, [0] * t.warmup_steps)  # untimed
    sync(rt.device)
    start = time.perf_counter()
    plain_steps(model, runner, optimizers, batches[t.warmup_steps :], autocast, range(steps))
    sync(rt.device)
    return 1000.0 * (time.perf_counter() - start) / steps


def time_loader(cfg, rt, steps: int) -> float:
    """Milliseconds the training loader alone needs to deliver one step's batches to the device."""
    t, accum = cfg.train, grad_accum_steps(cfg, 1)
    loader = train_loader(cfg, rt)
    sync(rt.device)
    start = time.perf_counter()
    for _ in range(steps * accum):
        loader.next_batch(t.batch_tokens, t.seq_len, accum)
    sync(rt.device)
    return 1000.0 * (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args, overrides = parser.parse_known_args()
    cfg = load_config([*overrides, f"train.iterations={args.steps}", "train.val_every=0", "train.log_every=0",
                       "budget=unlimited"])
    rt = setup_runtime(cfg.train)
    timers = {"framework": lambda: time_framework(cfg, rt, args.steps),
              "plain": lambda: time_plain(cfg, rt, args.steps, rt.compile)}
    if rt.compile:  # the compiled vs eager speed-up, on the plain loop so framework overhead stays out of it
        timers["plain eager"] = lambda: time_plain(cfg, rt, args.steps, False)
    timers["plain"]()  # untimed: the first run in a process pays for device warm-up and allocator growth
    times = {name: [] for name in timers}
    for i in range(args.repeats):  # ABBA order, so drift in machine speed hits every variant alike
        for name in (list(timers) if i % 2 == 0 else reversed(list(timers))):
            times[name].append(timers[name]())
    framework_ms, plain_ms = statistics.median(times["framework"]), statistics.median(times["plain"])
    eager_ms = statistics.median(times["plain eager"]) if rt.compile else None
    loader_ms = time_loader(cfg, rt, args.steps)
    flops = train_flops_per_token(cfg.arch, cfg.train.seq_len)
    tokens_per_s = cfg.train.batch_tokens / (framework_ms / 1000)
    device = device_name(rt.device)
    peak = peak_flops(device) if rt.device.type == "cuda" else None
    row = {
        "bench": "throughput", "device": device, "torch": torch.__version__, "overrides": overrides,
        "arch": f"{cfg.arch.name} {cfg.arch.num_layers}x{cfg.arch.model_dim}", "seq_len": cfg.train.seq_len,
        "batch_tokens": cfg.train.batch_tokens, "steps": args.steps, "repeats": args.repeats,
        "compile": rt.compile, "precision": "bf16" if rt.autocast_dtype is not None else "fp32",
        "framework_ms_per_step": round(framework_ms, 2), "plain_ms_per_step": round(plain_ms, 2),
        "framework_over_plain": round(framework_ms / plain_ms, 4), "tokens_per_s": round(tokens_per_s),
        "runs_ms": {name: [round(ms, 2) for ms in values] for name, values in times.items()},
        "plain_eager_ms_per_step": round(eager_ms, 2) if eager_ms else None,
        "compile_speedup": round(eager_ms / plain_ms, 3) if eager_ms else None,
        "peak_memory_mb": round(peak_memory_mb(rt.device)),
        "loader_ms_per_step": round(loader_ms, 3), "loader_headroom": round(framework_ms / loader_ms, 1),
        "train_flops_per_token": round(flops),
        "mfu": round(flops * tokens_per_s / peak[1], 4) if peak else None,
        "mfu_peak": f"{peak[0]} dense bf16 {peak[1] / 1e12:.0f} TFLOP/s" if peak else None,
    }
    mfu = f"{row['mfu']:.1%}" if peak else "n/a (CPU)"
    speedup = f"{row['compile_speedup']:.2f}x" if eager_ms else "—"
    record("throughput", row,
           "| device | arch | seq | tokens/step | compile | golf ms/step | plain ms/step | golf/plain | tokens/s "
           "| compiled vs eager | peak MiB | loader headroom | MFU |\n" + "|---" * 13 + "|\n",
           f"| {device} | {row['arch']} | {row['seq_len']} | {row['batch_tokens']:,} | {rt.compile} | "
           f"{framework_ms:.1f} | {plain_ms:.1f} | {row['framework_over_plain']:.3f} | {row['tokens_per_s']:,} | "
           f"{speedup} | {row['peak_memory_mb']:,} | {row['loader_headroom']:.0f}x | {mfu} |")


if __name__ == "__main__":
    main()
