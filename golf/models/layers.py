"""Small building blocks shared by every architecture: RMSNorm, CastedLinear, (partial) rotary embeddings."""

import torch
import torch.nn.functional as F
from torch import nn

from golf.models.roles import parameter_roles


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
    qat_floor: bool = False  # the fake-quant scales are at least 1/qmax (quant.scale_floor)
    # golf.models.fake_quant.fake_quant, set on the layer with qat_bits by golf.quant.qat (so only runs with QAT
    # import it)
    fake_quant = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        w = self.weight
        if self.qat_bits and self.training:
            w = self.fake_quant(w, self.qat_bits, self.qat_tau, self.qat_floor)
        return F.linear(x, w.to(x.dtype), bias)


def rotary_inv_freq(dim: int, base: float) -> torch.Tensor:
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))


def rotation_tables(inv_freq: torch.Tensor, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of every position's angles, shaped [1, 1, seq_len, dim / 2] to broadcast over batch and heads."""
    t = torch.arange(seq_len, device=device, dtype=inv_freq.dtype)
    freqs = torch.outer(t, inv_freq.to(device))
    return freqs.cos()[None, None, :, :], freqs.sin()[None, None, :, :]


class Rotary(nn.Module):
    """Rotary position embedding tables for `dim` rotated dims, cached per sequence length, device and dtype
    (the cast to the activation dtype happens once, not in every layer's every forward). NTK and YaRN scaling
    for sequences longer than training's are golf.models.rope_scaling."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.register_buffer("inv_freq", rotary_inv_freq(dim, base), persistent=False)
        self._cache_key: tuple[int, torch.device, torch.dtype] | None = None
        self._cos: torch.Tensor | None = None
        self._sin: torch.Tensor | None = None

    def tables(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return rotation_tables(self.inv_freq, seq_len, device)

    def forward(self, seq_len: int, device: torch.device, dtype: torch.dtype):
        if torch.compiler.is_compiling():
            # In a compiled graph the tables are graph ops: no cached tensor to guard on or inspect, so a
            # recompile (recurrence or late-QAT switch, after eager runs filled the cache) traces cleanly.
            cos, sin = self.tables(seq_len, device)
            return cos.to(dtype=dtype), sin.to(dtype=dtype)
        # Tables built under inference_mode (validation) cannot be saved for backward: rebuild them.
        stale = self._cos is not None and self._cos.is_inference() and not torch.is_inference_mode_enabled()
        if self._cache_key != (seq_len, device, dtype) or stale:
            cos, sin = self.tables(seq_len, device)
            self._cos, self._sin = cos.to(dtype=dtype), sin.to(dtype=dtype)
            self._cache_key = (seq_len, device, dtype)
        return self._cos, self._sin


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rope_dims: int = 0) -> torch.Tensor:
    """Half-split rotation: (x1, x2) -> (x1 cos + x2 sin, -x1 sin + x2 cos). With 0 < rope_dims < head dim
    only the first rope_dims dims rotate (partial RoPE); the rest pass through unchanged."""
    if 0 < rope_dims < x.size(-1):
        return torch.cat((apply_rotary(x[..., :rope_dims], cos, sin), x[..., rope_dims:]), dim=-1)
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
    roles = parameter_roles(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if (p.ndim < 2 or roles[name].control) and p.dtype != torch.float32:
                p.data = p.data.float()
    return model
