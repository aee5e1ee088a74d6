"""The intn / gptq export: per-category N-bit codes (golf.quant.intn), GPTQ first collecting Hessians on
calibration tokens (golf.quant.calibration) and promoting AWQ-lite's column groups (golf.quant.awq_lite),
then LQER corrections (golf.quant.lqer) and optionally zeroing codes to fit the byte budget
(golf.quant.fit), packed for the compressor (golf.artifact.packed, or golf.artifact.pergroup)."""

import logging

import torch

from golf.artifact import packed
from golf.errors import ArtifactError
from golf.models.roles import Role, parameter_roles
from golf.quant.calibration import calibrate
from golf.quant.fit import fit_to_budget
from golf.quant.gptq import gptq_quantizer
from golf.quant.intn import FLOAT_BITS, bits_by_category, dequantized, quantize_state, round_matrix, storage_bits

log = logging.getLogger(__name__)


def hot_codec(quant) -> str:
    """The codec of the per-group layout's code buckets under quant.hot_compressor."""
    from golf.artifact import pergroup

    if quant.hot_compressor == "brotli":
        return "brotli"
    if pergroup.lrzip_available():
        return "lrzip"
    if quant.hot_compressor == "lrzip":
        raise ArtifactError("quant.hot_compressor=lrzip but the lrzip binary is not on PATH",
                            fix="apt-get install lrzip, or set quant.hot_compressor=auto (brotli without lrzip)")
    log.info(f"pergroup: {pergroup.LRZIP_MISSING}")
    return "brotli"


def _quantized_below(state: dict[str, torch.Tensor], roles: dict[str, Role], quant, bits: int) -> dict:
    """The matrices stored as codes of fewer than `bits` bits (attention gates aside), as quantize_state
    stores them."""
    by_category = bits_by_category(quant)
    return {name: t.float() for name, t in state.items()
            if t.ndim == 2 and roles[name].quant != "gate"
            and 0 < storage_bits(roles[name], t, quant, by_category) < min(bits, FLOAT_BITS)}


def quantize_lowbit(model, cfg, model_budget_bytes: int, autocast_dtype, calibration, step_state):
    """(artifact bytes, the weights they reload to, what results.json reports)."""
    q = cfg.quant
    info = {}
    quantizer, promoted = round_matrix, {}
    roles = parameter_roles(model, quant=q)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if q.scheme == "gptq":
        calibration = calibration or calibrate(model, cfg, autocast_dtype)
        info.update(calibration=calibration.source, calib_tokens=calibration.tokens,
                    calib_s=round(calibration.seconds, 3))
        if q.awq_groups:
            from golf.quant.awq_lite import select_groups

            promoted = select_groups(_quantized_below(state, roles, q, q.awq_bits), calibration.hessians,
                                     q.awq_groups, q.awq_group_size, q.awq_bits)
            info["awq_promoted"] = {name: [g.start, g.size, g.bits] for name, g in promoted.items()}
        quantizer = gptq_quantizer(calibration.hessians, q.gptq_damping, q.gptq_block_size, q.gptq_act_order,
                                   promoted)
    meta, tensors, info["params_by_bits"] = quantize_state(state, q, roles, quantizer, promoted)
    if q.lqer_top_k:
        from golf.quant.lqer import add_corrections

        candidates = [n for n in meta["quantized"] if roles[n].quant != "gate"]
        info["lqer"] = add_corrections(meta, tensors, state, candidates, q.lqer_top_k, q.lqer_rank, q.lqer_group)
    info["bits"] = bits_by_category(q)
    info["clip"] = str(q.clip)
    buckets = {name: roles[name].quant for name in meta["quantized"]}
    codec = hot_codec(q) if q.compressor == "pergroup" else ""
    if codec:
        info["compressor"] = f"pergroup-{codec}-brotli{q.level}"

    def encode(t: dict[str, torch.Tensor]) -> bytes:
        return packed.pack(meta, t, cfg.arch, q.compressor, q.level, step_state, buckets, codec)

    if q.fit_budget:
        tensors, blob, info["fit"] = fit_to_budget(meta, tensors, encode, model_budget_bytes)
    else:
        blob = encode(tensors)
    return blob, dequantized(meta, tensors), info
