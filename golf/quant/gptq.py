"""Full-Hessian GPTQ (Frantar et al. 2022), as used by the parameter-golf GPTQ stacks.

For a linear layer with inputs X, H = X^T X / n. Columns are quantized one at a time (in order of
decreasing H_jj with act_order); each column's rounding error, scaled by the Cholesky factor of
H^-1, is pushed onto the columns not yet quantized, so later columns absorb what earlier ones lost.
Per-row scales come from the clip mode; with `clip=search` every candidate is run through GPTQ and
the one with the least output error tr((W - Q) H (W - Q)^T) wins. Matrices without a Hessian fall back
to plain rounding with the same clip mode; so does the tied embedding, unless `embed_hessian` collects
one from the input of the tied head (the final norm's output, "GPTQ embeddings" of the 04-05 record on).
A promoted column group (AWQ-lite, golf.quant.awq_lite) is quantized in the same pass with its own, finer
per-row scales at more bits, so the error feedback runs through it like through any other column.
"""

import contextlib

import torch
from torch import nn

from golf.quant.intn import ColumnGroup, candidate_scales, promoted_scales, qmax, round_matrix


@torch.no_grad()
def collect_hessians(model: nn.Module, tokens: torch.Tensor, batch_seqs: int, autocast_dtype: torch.dtype | None,
                     embed_hessian: bool = False) -> dict[str, torch.Tensor]:
    """{"<module>.weight": X^T X / n} for every nn.Linear, from forward passes over `tokens` [n, T]; with
    `embed_hessian` and tied embeddings also "tok_emb.weight" from the final norm's output."""
    hessians: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    hooks = []

    def hook_for(key: str, on_output: bool = False):
        def hook(_module, inputs, output):
            seen = output if on_output else inputs[0]
            x = seen.detach().float().reshape(-1, seen.shape[-1])
            if key not in hessians:
                hessians[key] = torch.zeros(x.shape[1], x.shape[1], device=x.device)
                counts[key] = 0
            hessians[key].addmm_(x.T, x)
            counts[key] += x.shape[0]
        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(hook_for(f"{name}.weight")))
    if embed_hessian and getattr(model, "tie_embeddings", False):
        hooks.append(model.final_norm.register_forward_hook(hook_for("tok_emb.weight", on_output=True)))
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


def gptq_rows(w: torch.Tensor, s: torch.Tensor, u: torch.Tensor, m: torch.Tensor, block: int) -> torch.Tensor:
    """Codes for `w` [rows, cols] (columns already permuted) with error feedback through `u`; column j uses
    the per-row scales s[:, j] and the code range [-m[j], m[j]]."""
    w = w.clone()
    cols = w.shape[1]
    q = torch.zeros_like(w)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        w1 = w[:, i1:i2]
        err = torch.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col, sc, mc = w1[:, i], s[:, i1 + i], float(m[i1 + i])
            qc = torch.clamp(torch.round(col / sc), -mc, mc)
            q[:, i1 + i] = qc
            e = (col - qc * sc) / u1[i, i]
            w1[:, i:] -= e[:, None] * u1[i, i:][None, :]
            err[:, i] = e
        w[:, i2:] -= err @ u[i1:i2, i2:]
    return q


def column_scales(w: torch.Tensor, s: torch.Tensor, bits: int, quant, category: str,
                  promoted: ColumnGroup | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column copies of the row scales `s` and code limits; a promoted group gets the finer scales of
    golf.quant.intn.promoted_scales (of `w` as quantize_state sees it) and its own limit."""
    scales = s[:, None].expand(w.shape).clone()
    limits = torch.full((w.shape[1],), float(qmax(bits)))
    if promoted is not None:
        cols = slice(promoted.start, promoted.start + promoted.size)
        scales[:, cols] = promoted_scales(w, promoted, quant, category)[:, None]
        limits[cols] = qmax(promoted.bits)
    return scales, limits


def gptq_quantizer(hessians: dict[str, torch.Tensor], damping: float, block: int, act_order: bool,
                   promoted: dict[str, ColumnGroup] | None = None):
    """A golf.quant.intn MatrixQuantizer that runs GPTQ where a Hessian exists; `promoted` names the column
    group of a matrix that AWQ-lite keeps at more bits."""
    promoted = promoted or {}

    def quantize(name: str, w: torch.Tensor, bits: int, quant,
                 category: str = "other") -> tuple[torch.Tensor, torch.Tensor]:
        h = hessians.get(name)
        if h is None or h.shape[0] != w.shape[1] or category == "gate":
            return round_matrix(name, w, bits, quant, category)
        h = h.double().clone()
        given, w = w, w.clone()
        dead = h.diagonal() == 0
        h[dead, dead] = 1.0
        w[:, dead] = 0.0
        perm = torch.argsort(h.diagonal(), descending=True) if act_order else torch.arange(w.shape[1])
        inv = torch.argsort(perm)
        hp = h[perm][:, perm]
        u = _inverse_cholesky(hp, damping).float()
        wp = w[:, perm]
        best = None
        for s in candidate_scales(w, bits, quant, category):
            scales, limits = column_scales(given, s, bits, quant, category, promoted.get(name))
            q = gptq_rows(wp, scales[:, perm], u, limits[perm], block)[:, inv]
            d = (q * scales - w).double()
            err = float(((d @ h) * d).sum())
            if best is None or err < best[0]:
                best = (err, q, s)
        return best[1], best[2]

    return quantize
