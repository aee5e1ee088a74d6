"""Reconstruction of a quantized matrix with the extras a quantizer may store beside its codes.

    W = q * s                                  per-row scales s (every quantized matrix)
    W[:, g] = q[:, g] * s_promoted             a promoted column group g at more bits (AWQ-lite)
    W += (qa * sa) @ (qb * sb)                 a low-rank correction of the quantization error (LQER):
                                               A [rows, r] int2 codes, one scale; B [r, cols] int4 codes,
                                               one scale per `group` consecutive values of B

All in float32, so every reader (the export's in-memory copy and a reloaded artifact) computes the same
bits. The quantizers are golf.quant.awq_lite and golf.quant.lqer.
"""

import torch


def low_rank_delta(qa: torch.Tensor, a_scale: torch.Tensor, qb: torch.Tensor, b_scale: torch.Tensor,
                   group: int) -> torch.Tensor:
    a = qa.float() * a_scale.float()
    b = (qb.float().reshape(-1, group) * b_scale.float()[:, None]).reshape(qb.shape)
    return a @ b


def reconstruct(name: str, entry: dict, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """The float32 weights of quantized tensor `name` (its meta entry and the stored tensors)."""
    q, s = tensors[name + ".q"], tensors[name + ".scale"]
    w = q.float() * s.float().view(-1, *([1] * (q.ndim - 1)))
    if "promoted" in entry:
        cols = slice(entry["promoted"]["start"], entry["promoted"]["start"] + entry["promoted"]["size"])
        w[:, cols] = q[:, cols].float() * tensors[name + ".promoted_scale"].float()[:, None]
    if "lqer" in entry:
        w += low_rank_delta(tensors[name + ".lqer_a"], tensors[name + ".lqer_a_scale"], tensors[name + ".lqer_b"],
                            tensors[name + ".lqer_b_scale"], entry["lqer"]["group"])
    return w
