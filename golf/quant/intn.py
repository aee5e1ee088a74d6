"""Per-row symmetric N-bit quantization of a state dict, bits chosen per tensor category.

Row r of a matrix gets one scale s_r (stored fp16) and codes q = clamp(round(W_r / s_r), -M, M)
with M = 2^(N-1) - 1, kept in int8 containers (the compressor squeezes out the unused high bits).
The clip c_r = M s_r comes from a percentile of |W_r|, from k x std(W_r) ("SDClip", with its own k
per category where a recipe sets one: PR #1550 clips its int8 embedding at k = 20, the PR #1855-#2135
records use embed 14, attention 13, MLP 11.5), or from a search over percentiles that keeps the one with
the smallest reconstruction error per matrix ("GPTQ-lite").
With `quant.scale_floor` every scale is at least 1/M, as in the official int8 export and the seeds'
int6 exports: rows whose clip is below 1 then get a coarser grid than their range needs. Small tensors
(numel <= keep_float_max_numel) stay float: fp32 for control tensors (at any size), fp16 otherwise, as
in the official export. Attention-gate weights (category "gate") are the exception: below 16 bits they are
quantized at any size, clipped at their row maximum (a dozen weights per row: no outliers to clip, and no
Hessian).
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from golf.artifact import packed
from golf.logging.progress import Progress
from golf.models.roles import Role

FORMAT = "intn_per_row_v1"
CATEGORIES = ("embed", "attn", "mlp", "other", "gate")
FLOAT_BITS = 16  # a category at 16 bits is stored fp16, not quantized


def bits_by_category(quant) -> dict[str, int]:
    return {c: getattr(quant, f"bits_{c}") for c in CATEGORIES}


def storage_bits(role: Role, t: torch.Tensor, quant, bits: dict[str, int]) -> int:
    """How a tensor is stored: 0 as is (integers), quant.control_bits (control: 32 fp32 or 16 fp16), 16 fp16
    (small or kept float), else the N-bit codes of its role's category (golf.models.roles)."""
    if not t.is_floating_point():
        return 0
    if role.control:
        return quant.control_bits
    b = bits[role.quant]
    small = t.numel() <= quant.keep_float_max_numel and role.quant != "gate"
    return FLOAT_BITS if small or b == FLOAT_BITS else b


def qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """The matrix view that gets one scale per row: (dim 0, everything else)."""
    return t.float().reshape(t.shape[0] if t.ndim > 1 else 1, -1)


def scales_from_clip(clip: torch.Tensor, bits: int, floor: bool = False) -> torch.Tensor:
    """fp16-representable per-row scales (quantizing with the stored value keeps the round trip exact);
    with `floor`, at least 1/qmax."""
    s = clip / qmax(bits)
    if floor:
        s = s.clamp_min(1.0 / qmax(bits))
    s = s.to(torch.float16)
    return torch.where(s > 0, s, torch.ones_like(s)).float()


def percentile_scales(w: torch.Tensor, bits: int, percentile: float, floor: bool = False) -> torch.Tensor:
    a = w.abs()
    clip = a.amax(dim=1) if percentile >= 100 else torch.quantile(a, percentile / 100.0, dim=1)
    return scales_from_clip(clip, bits, floor)


def sdclip_scales(w: torch.Tensor, bits: int, k: float, floor: bool = False) -> torch.Tensor:
    return scales_from_clip(k * w.std(dim=1), bits, floor)  # the sample std, as PR #1550 computes it


def clip_for(quant, category: str):
    """`quant` as it applies to one category: SDClip with that category's k (quant.sdclip_k_embed / _attn /
    _mlp / _other; None: quant.sdclip_k), where k = 0 means the percentile clip (PR #1550's int8 tensors)."""
    k = getattr(quant, f"sdclip_k_{category}", None)
    if quant.clip != "sdclip" or k is None:
        return quant
    adjusted = copy.copy(quant)  # a dataclass in golf, a plain namespace in a record's script
    if k == 0:
        adjusted.clip = "percentile"
    else:
        adjusted.sdclip_k = k
    return adjusted


def round_rows(w: torch.Tensor, s: torch.Tensor, bits: int) -> torch.Tensor:
    m = qmax(bits)
    return torch.clamp(torch.round(w / s[:, None]), -m, m)


def candidate_scales(w: torch.Tensor, bits: int, quant, category: str = "other") -> list[torch.Tensor]:
    """The per-row scales the clip mode allows; more than one only for the search."""
    mode, floor = quant.clip, quant.scale_floor
    if category == "gate":
        return [percentile_scales(w, bits, 100.0)]
    if mode == "percentile":
        return [percentile_scales(w, bits, quant.clip_percentile, floor)]
    if mode == "sdclip":
        return [sdclip_scales(w, bits, quant.sdclip_k, floor)]
    return [percentile_scales(w, bits, p, floor) for p in quant.search_percentiles]


def round_matrix(name: str, w: torch.Tensor, bits: int, quant,
                 category: str = "other") -> tuple[torch.Tensor, torch.Tensor]:
    """Plain rounding; with several candidate clips keep the one of least squared error (GPTQ-lite)."""
    best = None
    for s in candidate_scales(w, bits, quant, category):
        q = round_rows(w, s, bits)
        err = float(((q * s[:, None] - w) ** 2).sum())
        if best is None or err < best[0]:
            best = (err, q, s)
    return best[1], best[2]


@dataclass(frozen=True)
class ColumnGroup:
    """Columns [start, start + size) of a matrix, stored at `bits` with per-row scales of their own (AWQ-lite)."""

    start: int
    size: int
    bits: int


def promoted_scales(w: torch.Tensor, group: ColumnGroup, quant, category: str) -> torch.Tensor:
    """The per-row scales of a promoted group: the matrix's clip (one candidate: AWQ-lite needs percentile or
    sdclip) over the group's code range, so those columns get a finer step."""
    return candidate_scales(w, group.bits, quant, category)[0]


def magnitude_prune(w: torch.Tensor, fraction: float) -> torch.Tensor:
    """Zero the `fraction` of entries with the smallest magnitude (ties may prune a few more)."""
    k = int(fraction * w.numel())
    if k <= 0:
        return w
    threshold = w.abs().flatten().kthvalue(k).values
    return torch.where(w.abs() <= threshold, torch.zeros_like(w), w)


# (name, rows view, bits, quant config, category) -> (codes, per-row scales)
MatrixQuantizer = Callable[[str, torch.Tensor, int, object, str], tuple[torch.Tensor, torch.Tensor]]


def quantize_state(state: dict[str, torch.Tensor], quant, roles: dict[str, Role],
                   quantize_matrix: MatrixQuantizer = round_matrix, promoted: dict[str, ColumnGroup] | None = None):
    """Return (meta, tensors) for golf.artifact.packed and the parameter count at each bit width; `roles`
    (golf.models.roles.parameter_roles of the model) say how each tensor is stored; `promoted` names the
    column group of a matrix that the quantizer stored at more bits (its scales are stored beside)."""
    promoted = promoted or {}
    bits = bits_by_category(quant)
    meta = {"format": FORMAT, "scheme": str(quant.scheme), "order": list(state), "quantized": {},
            "orig_dtypes": {}}
    tensors: dict[str, torch.Tensor] = {}
    params_by_bits: dict[str, int] = {}
    progress = Progress(len(state), f"quantize {quant.name}", "tensors")
    for name, tensor in state.items():
        progress.update()
        t = tensor.detach().to("cpu").contiguous()
        b = storage_bits(roles[name], t, quant, bits)
        if b == 0:
            tensors[name] = t
        elif b == 32:
            tensors[name] = t.float().contiguous()
        elif b == FLOAT_BITS:
            meta["orig_dtypes"][name] = str(t.dtype).removeprefix("torch.")
            tensors[name] = t.to(torch.float16).contiguous()
        else:
            w = magnitude_prune(as_rows(t), quant.prune_fraction)
            category = roles[name].quant
            clipped = clip_for(quant, category)
            q, s = quantize_matrix(name, w, b, clipped, category)
            tensors[name + ".q"] = q.to(torch.int8).reshape(t.shape).contiguous()
            tensors[name + ".scale"] = s.to(torch.float16).contiguous()
            meta["quantized"][name] = {"bits": b, "dtype": str(t.dtype).removeprefix("torch.")}
            if name in promoted:
                group = promoted[name]
                tensors[name + ".promoted_scale"] = promoted_scales(w, group, clipped, category).half()
                meta["quantized"][name]["promoted"] = {"start": group.start, "size": group.size, "bits": group.bits}
        if b:
            params_by_bits[str(b)] = params_by_bits.get(str(b), 0) + t.numel()
    progress.close()
    return meta, tensors, params_by_bits


def dequantized(meta: dict, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights the artifact will reload to, computed by the artifact reader's own code."""
    return packed.dequantize(meta, tensors)
