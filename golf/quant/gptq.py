"""Full-Hessian GPTQ (Frantar et al. 2022), as used by the parameter-golf GPTQ stacks.

For a linear layer with inputs X, H = X^T X / n. Columns are quantized one at a time (in order of
decreasing H_jj with act_order); each column's rounding error, scaled by the Cholesky factor of
H^-1, is pushed onto the columns not yet quantized, so later columns absorb what earlier ones lost.
Per-row scales come from the clip mode; with `clip=search` every candidate is run through GPTQ and
the one with the least output error tr((W - Q) H (W - Q)^T) wins. Matrices without a Hessian (the
tied embedding) fall back to plain rounding with the same clip mode.
"""

import contextlib

import torch
from torch import nn

from golf.quant.intn import candidate_scales, qmax, round_matrix


@torch.no_grad()
def collect_hessians(model: nn.Module, tokens: torch.Tensor, batch_seqs: int,
                     autocast_dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """{"<module>.weight": X^T X / n} for every nn.Linear, from forward passes over `tokens` [n, T]."""
    hessians: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []

    def hook_for(key: str):
        def hook(_module, inputs, _output):
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1])
            if key not in hessians:
                hessians[key] = torch.zeros(x.shape[1], x.shape[1], device=x.device)
                counts[key] = 0
            hessians[key].addmm_(x.T, x)
            counts[key] += x.shape[0]
        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(hook_for(f"{name}.weight")))
    device = next(model.parameters()).device
    autocast = (torch.autocast(device_type=device.type, dtype=autocast_dtype)
                if autocast_dtype is not None else contextlib.nullcontext())
    was_training = model.training
    model.eval()
    try:
        for first in range(0, tokens.shape[0], batch_seqs):
            with autocast:
                model.logits(tokens[first : first + batch_seqs].to(device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {k: (h / counts[k]).cpu() for k, h in hessians.items()}


def _inverse_cholesky(h: torch.Tensor, damping: float) -> torch.Tensor:
    """Upper Cholesky factor of (H + damping x mean(diag H) x I)^-1."""
    h = h + damping * h.diagonal().mean() * torch.eye(h.shape[0], dtype=h.dtype)
    return torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)


def gptq_rows(w: torch.Tensor, s: torch.Tensor, u: torch.Tensor, bits: int, block: int) -> torch.Tensor:
    """Codes for `w` [rows, cols] (columns already permuted) with error feedback through `u`."""
    w = w.clone()
    m = qmax(bits)
    cols = w.shape[1]
    q = torch.zeros_like(w)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1 = w[:, i1:i2]
        err = torch.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = w1[:, i]
            qc = torch.clamp(torch.round(col / s), -m, m)
            q[:, i1 + i] = qc
            e = (col - qc * s) / u1[i, i]
            w1[:, i:] -= e[:, None] * u1[i, i:][None, :]
            err[:, i] = e
        w[:, i2:] -= err @ u[i1:i2, i2:]
    return q


def gptq_quantizer(hessians: dict[str, torch.Tensor], damping: float, block: int, act_order: bool):
    """A golf.quant.intn MatrixQuantizer that runs GPTQ where a Hessian exists."""

    def quantize(name: str, w: torch.Tensor, bits: int, quant) -> tuple[torch.Tensor, torch.Tensor]:
        h = hessians.get(name)
        if h is None or h.shape[0] != w.shape[1]:
            return round_matrix(name, w, bits, quant)
        h = h.double().clone()
        w = w.clone()
        dead = h.diagonal() == 0
        h[dead, dead] = 1.0
        w[:, dead] = 0.0
        perm = torch.argsort(h.diagonal(), descending=True) if act_order else torch.arange(w.shape[1])
        inv = torch.argsort(perm)
        hp = h[perm][:, perm]
        u = _inverse_cholesky(hp, damping).float()
        wp = w[:, perm]
        best = None
        for s in candidate_scales(w, bits, quant):
            q = gptq_rows(wp, s, u, bits, block)[:, inv]
            d = (q * s[:, None] - w).double()
            err = float(((d @ h) * d).sum())
            if best is None or err < best[0]:
                best = (err, q, s)
        return best[1], best[2]

    return quantize
