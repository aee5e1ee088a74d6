"""Whether a run is sized for where it will train, said before the wait: before launch, a GPU-sized run
about to train on the CPU is refused (or, with train.device=cpu, warned about) with its CPU-sized variant.
The training time the warm-up measures is logged by the trainer (golf.logging.console.expected_training)."""

from pathlib import Path

import torch

from golf.errors import ConfigError
from golf.models.registry import build_model

# One step of `+experiment=cpu_demo` (arch=tiny, 592,144 params, 8,192 tokens a step): about a second on a
# 2-core CPU. A step of 6 x params x tokens FLOPs beyond CPU_SIZED times that one is a GPU-sized step.
CPU_DEMO_STEP_FLOPS = 6 * 592_144 * 8_192
CPU_SIZED = 10
ARCH_CONFIGS = Path(__file__).resolve().parent / "conf" / "arch"


def check_cpu_sized(cfg, arch_choice: str) -> str | None:
    """Refuse a run whose every step is GPU-sized work when it would land on the CPU by default (no CUDA
    device visible): its warm-up alone takes hours and tens of GB. With train.device=cpu it is the user's
    choice: return the same facts as a warning. None when the run is CPU-sized or trains on a GPU."""
    device = cfg.train.device
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return None
    with torch.device("meta"):
        params = sum(p.numel() for p in build_model(cfg.arch).parameters())
    batch = max([cfg.train.batch_tokens, *(tokens for _, tokens in cfg.train.batch_schedule)])
    ratio = 6 * params * batch / CPU_DEMO_STEP_FLOPS
    if ratio <= CPU_SIZED:
        return None
    small = f"arch={arch_choice}_cpu" if (ARCH_CONFIGS / f"{arch_choice}_cpu.yaml").is_file() else "arch=tiny"
    facts = (f"a GPU-sized run on the CPU: arch={arch_choice} has {params:,} params and a step trains {batch:,} "
             f"tokens, ~{ratio:,.0f}x the work of a +experiment=cpu_demo step (about a second on 2 cores)")
    variant = (f"the CPU-sized variant is python -m golf.train +experiment=cpu_demo {small} plus your other "
               f"overrides (150 steps of 8,192 tokens)")
    if device == "auto":
        raise ConfigError(f"{facts}, and no CUDA device is visible; {variant}, or set train.device=cpu to train "
                          f"this on the CPU anyway")
    return f"warning: {facts}; {variant}. The expected training time prints after the warm-up."
