"""Model FLOPs per token, counted from the config rather than from a formula per architecture.

The model is built on the meta device (no memory, no weights) and one forward + backward over a
single sequence runs under torch's FlopCounterMode, which counts every matmul the real step does:
block matrices, the tied head, attention scores and values, and whatever an architecture adds
(recurrence, LoRA bypasses, bigram projections). Attention is counted as the full T x T products
SDPA's math path performs, the usual convention for MFU (PaLM appendix B), not halved for the mask.
"""

import torch
from torch.utils.flop_counter import FlopCounterMode

from golf.models.registry import build_model

# Dense bf16 tensor-core peaks (no sparsity), from the vendors' datasheets.
PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def train_flops_per_token(arch, seq_len: int) -> float:
    """Forward + backward FLOPs per training token at this sequence length."""
    with torch.device("meta"):
        model = build_model(arch)
        tokens = torch.zeros(1, seq_len, dtype=torch.long)
    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        model(tokens, tokens).backward()
    return counter.get_total_flops() / seq_len


def peak_flops(device_name: str) -> tuple[str, float] | None:
    """(matched name, peak bf16 FLOP/s) for a CUDA device name, or None when unknown."""
    for key, peak in PEAK_BF16_FLOPS.items():
        if key in device_name:
            return key, peak
    return None
