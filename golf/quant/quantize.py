"""From a trained model to artifact bytes, whatever the scheme, with what results.json reports.

int8 / none go through the official layout (golf.artifact.int8, golf.artifact.container.pack). intn and
gptq quantize per tensor category (golf.quant.intn), GPTQ first collecting Hessians on calibration
tokens (and promoting AWQ-lite's column groups, golf.quant.awq_lite), then add LQER corrections
(golf.quant.lqer) and optionally prune to fit the byte budget (golf.quant.fit). The dequantized weights
returned are the ones the artifact reloads to, so BPB measured on them in memory equals the BPB
of the reloaded artifact.
"""

import logging
import time
from dataclasses import dataclass

import torch

from golf.artifact import container, int8, pergroup
from golf.errors import ArtifactError
from golf.models.roles import Role, control_names, parameter_roles
from golf.quant.awq_lite import select_groups
from golf.quant.calibration import self_generated_tokens, train_tokens
from golf.quant.fit import fit_to_budget
from golf.quant.gptq import collect_hessians, gptq_quantizer
from golf.quant.intn import FLOAT_BITS, bits_by_category, dequantized, quantize_state, round_matrix, storage_bits
from golf.quant.lqer import add_corrections

log = logging.getLogger(__name__)

CALIB_BATCH_SEQS = 8


@dataclass
class Quantized:
    blob: bytes
    state: dict[str, torch.Tensor]  # the weights the artifact reloads to
    info: dict


def calibration(model, cfg, autocast_dtype) -> tuple[dict[str, torch.Tensor], str, int]:
    q, d = cfg.quant, cfg.data
    seq_len = q.calib_seq_len or cfg.train.seq_len
    if q.calib_source == "train":
        tokens, source = train_tokens(d.train_pattern, d.val_pattern, q.calib_seqs, seq_len)
    else:
        tokens, source = self_generated_tokens(model, cfg.arch.vocab_size, q.calib_seqs, seq_len,
                                               q.calib_temperature, cfg.seed)
    hessians = collect_hessians(model, tokens, CALIB_BATCH_SEQS, autocast_dtype, q.gptq_embed_hessian)
    return hessians, source, tokens.numel()


def hot_codec(quant) -> str:
    """The codec of the per-group layout's code buckets under quant.hot_compressor."""
    if quant.hot_compressor == "brotli":
        return "brotli"
    if pergroup.lrzip_available():
        return "lrzip"
    if quant.hot_compressor == "lrzip":
        raise ArtifactError("quant.hot_compressor=lrzip but the lrzip binary is not on PATH; apt-get install lrzip, "
                            "or set quant.hot_compressor=auto (brotli without lrzip)")
    log.info(f"pergroup: {pergroup.LRZIP_MISSING}")
    return "brotli"


def _quantized_below(state: dict[str, torch.Tensor], roles: dict[str, Role], quant, bits: int) -> dict:
    """The matrices stored as codes of fewer than `bits` bits (attention gates aside), as quantize_state
    stores them."""
    by_category = bits_by_category(quant)
    return {name: t.float() for name, t in state.items()
            if t.ndim == 2 and roles[name].quant != "gate"
            and 0 < storage_bits(roles[name], t, quant, by_category) < min(bits, FLOAT_BITS)}


def pack_official(model, arch, quant) -> bytes:
    """Artifact bytes of `model` in the official layout: int8 per row (quant.scheme=int8) or raw weights."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if quant.scheme == "int8":
        weights = int8.quantize_state_dict(state, quant.clip_percentile, quant.keep_float_max_numel,
                                           control_names(model))
    else:
        weights = container.raw_weights(state)
    return container.pack(weights, arch, quant.scheme, quant.compressor, quant.level)


def quantize(model, cfg, model_budget_bytes: int, autocast_dtype: torch.dtype | None = None) -> Quantized:
    """Quantize and pack `model` per cfg.quant; `model_budget_bytes` is the limit minus the code bytes."""
    q = cfg.quant
    t0 = time.perf_counter()
    info = {"scheme": str(q.scheme), "name": q.name, "compressor": f"{q.compressor}-{q.level}", "calibration": "none"}
    if q.scheme in ("none", "int8"):
        blob = pack_official(model, cfg.arch, q)
        info["bits"] = {"all": 8 if q.scheme == "int8" else "raw"}
        info["quant_s"] = round(time.perf_counter() - t0, 3)
        return Quantized(blob, container.unpack(blob)[1], info)
    quantizer, promoted = round_matrix, {}
    roles = parameter_roles(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if q.scheme == "gptq":
        hessians, info["calibration"], info["calib_tokens"] = calibration(model, cfg, autocast_dtype)
        if q.awq_groups:
            promoted = select_groups(_quantized_below(state, roles, q, q.awq_bits), hessians, q.awq_groups,
                                     q.awq_group_size, q.awq_bits)
            info["awq_promoted"] = {name: [g.start, g.size, g.bits] for name, g in promoted.items()}
        quantizer = gptq_quantizer(hessians, q.gptq_damping, q.gptq_block_size, q.gptq_act_order, promoted)
    meta, tensors, info["params_by_bits"] = quantize_state(state, q, roles, quantizer, promoted)
    if q.lqer_top_k:
        candidates = [n for n in meta["quantized"] if roles[n].quant != "gate"]
        info["lqer"] = add_corrections(meta, tensors, state, candidates, q.lqer_top_k, q.lqer_rank, q.lqer_group)
    info["bits"] = bits_by_category(q)
    info["clip"] = str(q.clip)
    buckets = {name: roles[name].quant for name in meta["quantized"]}
    codec = hot_codec(q) if q.compressor == "pergroup" else ""
    if codec:
        info["compressor"] = f"pergroup-{codec}-brotli{q.level}"

    def encode(t: dict[str, torch.Tensor]) -> bytes:
        return container.pack_quantized(meta, t, cfg.arch, q.compressor, q.level, buckets, codec)

    if q.fit_budget:
        tensors, blob, info["fit"] = fit_to_budget(meta, tensors, encode, model_budget_bytes)
    else:
        blob = encode(tensors)
    info["quant_s"] = round(time.perf_counter() - t0, 3)
    return Quantized(blob, dequantized(meta, tensors), info)
