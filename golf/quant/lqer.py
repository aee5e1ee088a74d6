"""LQER (low-rank quantization error reconstruction; PR #1797's asymmetric form, in every record from #1855
to #2135): after quantization, the matrices with the largest error get a small low-rank correction.

For each quantized matrix, E = W - deq(W) (the reconstruction including any promoted group). The
`top_k` matrices with the largest ||E||_F get the rank-r truncated SVD E ~ U_r S_r V_r^T, stored as
A = U_r S_r  (int2 codes in [-2, 1], one fp16 scale max|A| / 1.5 for the whole factor) and
B = V_r^T    (int4 codes in [-8, 7], one fp16 scale max|group| / 7.5 per `group` consecutive values).
The asymmetric code ranges use every level of the 2- and 4-bit grids. The records: rank 4, top 3 (the
tied embedding and two MLP input matrices), group 32 in #2060/#2135 (64 in #1855). The reader's side is
golf.artifact.corrections.
"""

import logging

import torch

from golf.artifact.corrections import low_rank_delta, reconstruct

log = logging.getLogger(__name__)

A_LEVELS = (-2, 1)  # int2
B_LEVELS = (-8, 7)  # int4


def _fp16_scale(max_abs: torch.Tensor, half_range: float) -> torch.Tensor:
    s = (max_abs / half_range).to(torch.float16)
    return torch.where(s > 0, s, torch.ones_like(s))


def factorize(error: torch.Tensor, rank: int, group: int) -> dict[str, torch.Tensor]:
    """The stored factors of the rank-`rank` correction of `error` [rows, cols] (cols * rank % group == 0)."""
    u, sv, vh = torch.linalg.svd(error.float(), full_matrices=False)
    r = min(rank, sv.numel())
    return pack_factors(u[:, :r] * sv[:r], vh[:r], group)


def pack_factors(a: torch.Tensor, b: torch.Tensor, group: int) -> dict[str, torch.Tensor]:
    """A [rows, r] as int2 codes with one scale, B [r, cols] as int4 codes with one scale per `group` values."""
    a_scale = _fp16_scale(a.abs().amax(), 1.5)
    qa = torch.clamp(torch.round(a / a_scale.float()), *A_LEVELS).to(torch.int8)
    groups = b.reshape(-1, group)
    b_scale = _fp16_scale(groups.abs().amax(dim=1), 7.5)
    qb = torch.clamp(torch.round(groups / b_scale.float()[:, None]), *B_LEVELS).to(torch.int8).reshape(b.shape)
    return {".lqer_a": qa, ".lqer_a_scale": a_scale, ".lqer_b": qb, ".lqer_b_scale": b_scale}


def add_corrections(meta: dict, tensors: dict[str, torch.Tensor], state: dict[str, torch.Tensor],
                    candidates: list[str], top_k: int, rank: int, group: int) -> list[str]:
    """Add the factors of the `top_k` candidates (quantized 2-D matrices) with the largest error to
    `tensors` / `meta` in place; return their names, largest error first."""
    errors = {}
    for name in candidates:
        w = state[name].float()
        if w.ndim != 2 or (w.shape[1] * min(rank, *w.shape)) % group:
            continue
        errors[name] = w - reconstruct(name, meta["quantized"][name], tensors)
    chosen = sorted(errors, key=lambda n: -float(errors[n].norm()))[:top_k]
    for name in chosen:
        factors = factorize(errors[name], rank, group)
        tensors.update({name + suffix: t for suffix, t in factors.items()})
        meta["quantized"][name]["lqer"] = {"rank": int(factors[".lqer_a"].shape[1]), "group": group}
        fixed = errors[name] - low_rank_delta(*(factors[k] for k in (".lqer_a", ".lqer_a_scale", ".lqer_b",
                                                                       ".lqer_b_scale")), group)
        log.info(f"lqer: {name} error {float(errors[name].norm()):.4f} -> {float(fixed.norm()):.4f}")
    return chosen
