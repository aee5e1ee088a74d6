"""Small building blocks shared by every architecture: RMSNorm, CastedLinear, rotary embeddings."""

import torch
import torch.nn.functional as F
from torch import nn

from golf.quant.qat import fake_quant

# Names of per-channel control tensors. They stay fp32, go to the scalar Adam group and are never
# quantized, even when they are 2-D (resid_mix, skip_weights).
CONTROL_TENSOR_NAME_PATTERNS = (
    "attn_scale",
    "mlp_scale",
    "resid_mix",
    "q_gain",
    "skip_weight",
)


def is_control_tensor(name: str) -> bool:
    return any(pattern in name for pattern in CONTROL_TENSOR_NAME_PATTERNS)


class RMSNorm(nn.Module):
    """Parameter-free RMSNorm, as in the baseline (no learned gain)."""

    def __init__(self, eps: float | None = None):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.size(-1),), eps=self.eps)


class CastedLinear(nn.Linear):
    """Linear layer whose fp32 master weight is cast to the activation dtype at matmul time.

    Keeping the weight in fp32 lets the optimizer update it at full precision while the matmul
    runs in bf16 under autocast, exactly as the baseline does.
    """

    zero_init: bool = False
    qat_bits: int = 0  # > 0: training forwards see fake-quantized weights (golf.quant.qat.LateQAT)
    qat_tau: float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        w = self.weight
        if self.qat_bits and self.training:
            w = fake_quant(w, self.qat_bits, self.qat_tau)
        return F.linear(x, w.to(x.dtype), bias)


class Rotary(nn.Module):
    """Rotary position embedding tables, cached per sequence length and device."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache_key: tuple[int, torch.device] | None = None
        self._cos: torch.Tensor | None = None
        self._sin: torch.Tensor | None = None

    def forward(self, seq_len: int, device: torch.device, dtype: torch.dtype):
        # Tables built under inference_mode (validation) cannot be saved for backward: rebuild them.
        stale = self._cos is not None and self._cos.is_inference() and not torch.is_inference_mode_enabled()
        if self._cache_key != (seq_len, device) or stale:
            t = torch.arange(seq_len, device=device, dtype=self.inv_freq.dtype)
            freqs = torch.outer(t, self.inv_freq.to(device))
            self._cos = freqs.cos()[None, None, :, :]
            self._sin = freqs.sin()[None, None, :, :]
            self._cache_key = (seq_len, device)
        return self._cos.to(dtype=dtype), self._sin.to(dtype=dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Half-split rotation: (x1, x2) -> (x1 cos + x2 sin, -x1 sin + x2 cos)."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)


def apply_baseline_precision(model: nn.Module) -> nn.Module:
    """The baseline's storage dtypes for bf16 runs: everything bf16, then CastedLinear weights and
    every vector / control tensor back to fp32. Net effect: the token embedding (and with it the
    tied head) is stored in bf16, all other weights in fp32."""
    model.bfloat16()
    for module in model.modules():
        if isinstance(module, CastedLinear):
            module.float()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if (p.ndim < 2 or is_control_tensor(name)) and p.dtype != torch.float32:
                p.data = p.data.float()
    return model
