"""The budget fitter: selective +-1 pruning until the compressed artifact fits a byte target.

Candidates are the quantized codes equal to +-1; zeroing one costs s_row^2 of squared weight error,
the least harm a single change can do, and makes the code stream more compressible. The fitter
zeroes the k cheapest, with k the smallest count (binary search over real recompressions) that
lands the artifact at or under the target. The target is decimal bytes, like the limit.
"""

from collections.abc import Callable

import torch

from golf.errors import ArtifactError


def _candidates(meta: dict, tensors: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, flat positions, cost) of every +-1 code, per quantized tensor."""
    out = []
    for name in meta["quantized"]:
        q = tensors[name + ".q"].reshape(tensors[name + ".scale"].numel(), -1)
        cost = tensors[name + ".scale"].float()[:, None].expand_as(q) ** 2
        pos = (q.abs() == 1).flatten().nonzero().squeeze(1)
        out.append((name, pos, cost.flatten()[pos]))
    return out


def fit_to_budget(meta: dict, tensors: dict[str, torch.Tensor], encode: Callable[[dict], bytes],
                  target_bytes: int) -> tuple[dict, bytes, dict]:
    """Return (tensors, artifact bytes, info) with the artifact at most `target_bytes` long."""
    blob = encode(tensors)
    if len(blob) <= target_bytes:
        return tensors, blob, {"pruned_codes": 0, "candidates": 0, "unpruned_bytes": len(blob)}
    cands = _candidates(meta, tensors)
    owner = torch.cat([torch.full_like(pos, i) for i, (_, pos, _) in enumerate(cands)])
    positions = torch.cat([pos for _, pos, _ in cands])
    order = torch.argsort(torch.cat([c for _, _, c in cands]), stable=True)
    owner, positions = owner[order], positions[order]

    def pruned(k: int) -> dict[str, torch.Tensor]:
        out = dict(tensors)
        for i, (name, _, _) in enumerate(cands):
            chosen = positions[:k][owner[:k] == i]
            if chosen.numel():
                q = out[name + ".q"].clone()
                q.view(-1)[chosen] = 0
                out[name + ".q"] = q
        return out

    total = positions.numel()
    smallest = encode(pruned(total))
    if len(smallest) > target_bytes:
        raise ArtifactError(f"the model is {len(blob) - target_bytes:,} B over its {target_bytes:,} B share of the "
                            f"limit and still {len(smallest) - target_bytes:,} B over after zeroing all {total:,} "
                            f"+-1 codes", fix="lower the bits (quant.bits_mlp=5, quant.bits_attn=5), raise "
                            "quant.prune_fraction, use quant.compressor=lzma, or shrink the model (arch.*)")
    lo, hi, best = 0, total, smallest
    while hi - lo > 1:
        mid = (lo + hi) // 2
        candidate = encode(pruned(mid))
        if len(candidate) <= target_bytes:
            hi, best = mid, candidate
        else:
            lo = mid
    return pruned(hi), best, {"pruned_codes": hi, "candidates": total, "unpruned_bytes": len(blob)}
