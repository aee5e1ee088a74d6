"""The fake-quantization grid of late QAT: a leaf module, so the model can carry it without importing the
quantizers (golf.quant.qat switches it on; golf.quant.intn stores weights on the same grid).

Per-row symmetric N-bit with fp16 row-max scales, the grid of `quant.clip=percentile` at 100 (with
`floor`, scales of at least 1/qmax, as the seeds' late QAT: s = max(rowmax / 31, 1 / 31)).
"""

import torch


def fake_quant(w: torch.Tensor, bits: int, tau: float = 0.0, floor: bool = False) -> torch.Tensor:
    m = 2 ** (bits - 1) - 1
    w32 = w.float()
    s = w32.detach().abs().amax(dim=-1, keepdim=True) / m
    s = (s.clamp_min(1.0 / m) if floor else s).to(torch.float16).float()
    s = torch.where(s > 0, s, torch.ones_like(s))
    z = w32 / s
    q_hard = torch.clamp(torch.round(z), -m, m)
    # x - x.detach() is exactly 0 in value: the forward is the export's q * s to the last bit
    if tau <= 0:
        return (q_hard * s + (w32 - w32.detach())).to(w.dtype)
    q_soft = torch.floor(z) + torch.sigmoid((z - torch.floor(z) - 0.5) / tau)
    return ((q_hard + (q_soft - q_soft.detach())) * s).to(w.dtype)
