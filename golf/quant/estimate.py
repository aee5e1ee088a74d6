"""Artifact size before training: parameter counts by group and an estimate of the compressed bytes.

A run that cannot fit the 16,000,000-byte budget should be refused before ten minutes of GPU time
are spent on it. The model is built on the meta device (shapes only). Each tensor is stored as the
export would store it (`golf.quant.intn.storage_bits`: fp32 control tensors, fp16 small tensors,
N-bit codes with one fp16 scale per row for the rest). N-bit codes compress to about their entropy,
modelled as a Gaussian row quantized with a clip at z standard deviations (z from the percentile or
SDClip k) and step clip / qmax:

    H(bits) = 1/2 log2(2 pi e) + log2(qmax / z)   (at most `bits`)

so int8 codes clipped at the 99.99984th percentile (z ~ 4.8) cost ~6.8 bits and int6 ~4.7 bits.
Against published artifacts the model is within 10%: the naive baseline (17,059,912 params, int8 +
zlib) is 15,815,847 B, the estimate 14,566,032 (-8%: Muon-trained rows are lighter-tailed than a
Gaussian, so their int8 codes carry ~7.4 bits); resouer #6 (26,993,756 params, GPTQ int6 + lzma) is
~15,697,000 B, the estimate 16,399,079 (+4%); PR #1550 (36,311,132 params, GPTQ int6 with SDClip
12.85 + lzma) is 15,302,147 B, the estimate 16,432,035 (+7%). So a run is refused only when the estimate exceeds the
limit by more than ESTIMATE_TOLERANCE, and warned about when it is over by less; the exact size is
always checked again after export, against the real compressed bytes.
"""

import logging
import math
from dataclasses import dataclass, field
from statistics import NormalDist

import torch

from golf.errors import ArtifactError
from golf.models.registry import build_model
from golf.models.roles import Role, parameter_roles
from golf.quant.intn import FLOAT_BITS, bits_by_category, clip_for, storage_bits

log = logging.getLogger(__name__)

ESTIMATE_TOLERANCE = 0.10  # the model's largest error on the published artifacts above
GAUSSIAN_ENTROPY_BITS = 0.5 * math.log2(2 * math.pi * math.e)  # differential entropy of N(0, 1), bits


@dataclass
class SizeEstimate:
    params: int
    params_by_group: dict[str, int]
    params_by_bits: dict[str, int]
    raw_bytes: int  # payload before compression
    model_bytes: int  # estimated compressed payload
    bits_per_code: dict[str, float] = field(default_factory=dict)  # "<category>:<bits>" -> estimated bits per code


def clip_z(quant) -> float:
    """Standard deviations at which each row is clipped, for a Gaussian row."""
    if quant.scheme in ("intn", "gptq") and quant.clip == "sdclip":
        return quant.sdclip_k
    tail = max(1.0 - quant.clip_percentile / 100.0, 1e-12)
    return NormalDist().inv_cdf(1.0 - tail / 2.0)


def code_entropy_bits(bits: int, z: float) -> float:
    qmax = 2 ** (bits - 1) - 1
    return min(float(bits), max(GAUSSIAN_ENTROPY_BITS + math.log2(qmax / z), 1.0))


def _stored_bits(role: Role, t: torch.Tensor, quant) -> int:
    """Bits per stored value under the export of `quant` (0: integer tensor kept as is)."""
    if quant.scheme == "none":
        return 0 if not t.is_floating_point() else t.element_size() * 8
    if quant.scheme == "int8" and t.is_floating_point() and t.numel() > quant.keep_float_max_numel:
        return 8  # the official export quantizes every large float tensor, control or not
    return storage_bits(role, t, quant, bits_by_category(quant))


def estimate(arch, quant) -> SizeEstimate:
    with torch.device("meta"):
        model = build_model(arch)
    compressed = quant.compressor != "none"
    roles = parameter_roles(model, quant=quant)
    by_group: dict[str, int] = {}
    by_bits: dict[str, int] = {}
    raw = model_bytes = 0.0
    per_code = {}
    for name, t in model.state_dict().items():
        group = "control" if roles[name].control else roles[name].quant
        by_group[group] = by_group.get(group, 0) + t.numel()
        b = _stored_bits(roles[name], t, quant)
        by_bits[str(b)] = by_bits.get(str(b), 0) + t.numel()
        if b == 0 or b >= FLOAT_BITS:
            size = t.numel() * (b // 8 if b else t.element_size())
            raw += size
            model_bytes += size
            continue
        rows = t.shape[0] if t.ndim > 1 else 1
        category = roles[name].quant
        bits = per_code[f"{category}:{b}"] = code_entropy_bits(b, clip_z(clip_for(quant, category)))
        raw += t.numel() + 2 * rows  # one int8 container per code + an fp16 scale per row
        model_bytes += (t.numel() * bits / 8 if compressed else t.numel()) + 2 * rows
    return SizeEstimate(sum(by_group.values()), by_group, by_bits, int(raw), int(model_bytes), per_code)


def check_fits(cfg, code_bytes: int) -> SizeEstimate:
    """Log the parameter counts and the size estimate (model plus the run's `code_bytes`, the size of its
    train_gpt.py); refuse a run whose estimate exceeds the budget."""
    est = estimate(cfg.arch, cfg.quant)
    total, limit = est.model_bytes + code_bytes, cfg.budget.artifact_limit_bytes
    groups = ", ".join(f"{k} {v:,}" for k, v in est.params_by_group.items())
    log.info(f"size: {est.params:,} params ({groups}); estimated artifact {total:,} B under quant={cfg.quant.name} "
             f"(model ~{est.model_bytes:,} of {est.raw_bytes:,} raw + code {code_bytes:,}; limit {limit:,})")
    if not (cfg.budget.enforce_artifact_limit and cfg.budget.check_estimate) or total <= limit:
        return est
    if total <= limit * (1 + ESTIMATE_TOLERANCE):
        log.warning(f"size: the estimate is {total - limit:,} B over the limit, within the estimate's "
                    f"{ESTIMATE_TOLERANCE:.0%} error; training anyway, the exact size is checked after export")
        return est
    raise ArtifactError(
        f"arch {cfg.arch.name} {cfg.arch.num_layers}x{cfg.arch.model_dim} with quant={cfg.quant.name}: estimated "
        f"artifact {total:,} B (model ~{est.model_bytes:,} + code {code_bytes:,}) exceeds the {limit:,} B limit by "
        f"{total - limit:,} B, more than the estimate's {ESTIMATE_TOLERANCE:.0%} error; use fewer bits (e.g. "
        f"quant=mixed_int5_int6 or quant.bits_mlp=5), a smaller model (arch.num_layers, arch.model_dim, "
        f"arch.mlp_mult), or budget.check_estimate=false to train anyway (the exact size is checked after export)")
