"""How long a run will take, said before the wait: a warning before launch when a GPU-sized run is about
to train on the CPU, and the expected training time measured by the trainer's warm-up steps."""

import statistics
from pathlib import Path

import torch

from golf.logging.console import format_duration
from golf.models.registry import build_model

# One step of `+experiment=cpu_demo` (arch=tiny, 592,144 params, 8,192 tokens a step): about a second on a
# 2-core CPU. A step of 6 x params x tokens FLOPs beyond CPU_SIZED times that one is a GPU-sized step.
CPU_DEMO_STEP_FLOPS = 6 * 592_144 * 8_192
CPU_SIZED = 10
ARCH_CONFIGS = Path(__file__).resolve().parent / "conf" / "arch"


def trains_on_cpu(device: str) -> bool:
    return device == "cpu" or (device == "auto" and not torch.cuda.is_available())


def gpu_sized_on_cpu(cfg, arch_choice: str) -> str | None:
    """The warning for a run whose every step is GPU-sized work when it would train on the CPU, else None."""
    if not trains_on_cpu(cfg.train.device):
        return None
    with torch.device("meta"):
        params = sum(p.numel() for p in build_model(cfg.arch).parameters())
    batch = max([cfg.train.batch_tokens, *(tokens for _, tokens in cfg.train.batch_schedule)])
    ratio = 6 * params * batch / CPU_DEMO_STEP_FLOPS
    if ratio <= CPU_SIZED:
        return None
    cap = cfg.budget.train_seconds
    steps = f"{cfg.train.warmup_steps} warm-up steps, then up to {cfg.train.iterations:,} steps" + (
        f" (or the {cap:.0f} s training cap)" if cap > 0 else "")
    small = f"arch={arch_choice}_cpu" if (ARCH_CONFIGS / f"{arch_choice}_cpu.yaml").is_file() else "arch=tiny"
    return (f"warning: a GPU-sized run on the CPU: arch={arch_choice} has {params:,} params and a step trains "
            f"{batch:,} tokens, ~{ratio:,.0f}x the work of a +experiment=cpu_demo step (about a second on 2 cores); "
            f"{steps} follow. The CPU-sized variant: python -m golf.train +experiment=cpu_demo {small} plus your "
            f"other overrides (150 steps of 8,192 tokens); the expected training time prints after the warm-up.")


def expected_training(step_seconds: list[float], iterations: int, compile_steps: int, cap_seconds: float) -> str:
    """The training time the warm-up predicts: `iterations` x its steady ms/step (the median of the steps after
    the first `compile_steps`, which build the graphs), and where a wall-clock cap would cut it."""
    ms = 1000 * statistics.median(step_seconds[compile_steps:] or step_seconds[-1:])
    total_s = iterations * ms / 1000
    line = f"expected training time: {iterations:,} steps x {ms:,.1f} ms/step (warm-up) = {format_duration(total_s)}"
    if 0 < cap_seconds < total_s:
        line += f"; the {cap_seconds:.0f} s cap stops it after about {int(1000 * cap_seconds / ms):,} steps"
    return line + " (validation, export and eval come on top)"
