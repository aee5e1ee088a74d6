"""The intn / gptq export: per-category N-bit codes (golf.quant.intn), GPTQ first collecting Hessians on
calibration tokens (golf.quant.calibration), then optionally zeroing codes to fit the byte budget
(golf.quant.fit), packed for the compressor (golf.artifact.packed)."""

import torch

from golf.artifact import container
from golf.models.roles import parameter_roles
from golf.quant.calibration import calibrate
from golf.quant.fit import fit_to_budget
from golf.quant.gptq import gptq_quantizer
from golf.quant.intn import bits_by_category, dequantized, quantize_state, round_matrix


def quantize_lowbit(model, cfg, model_budget_bytes: int, autocast_dtype, calibration, step_state):
    """(artifact bytes, the weights they reload to, what results.json reports)."""
    q = cfg.quant
    info = {}
    quantizer = round_matrix
    if q.scheme == "gptq":
        calibration = calibration or calibrate(model, cfg, autocast_dtype)
        info.update(calibration=calibration.source, calib_tokens=calibration.tokens,
                    calib_s=round(calibration.seconds, 3))
        quantizer = gptq_quantizer(calibration.hessians, q.gptq_damping, q.gptq_block_size, q.gptq_act_order)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta, tensors, info["params_by_bits"] = quantize_state(state, q, parameter_roles(model, quant=q), quantizer)
    info["bits"] = bits_by_category(q)
    info["clip"] = str(q.clip)

    def encode(t: dict[str, torch.Tensor]) -> bytes:
        return container.pack_quantized(meta, t, cfg.arch, q.compressor, q.level, step_state)

    if q.fit_budget:
        tensors, blob, info["fit"] = fit_to_budget(meta, tensors, encode, model_budget_bytes)
    else:
        blob = encode(tensors)
    return blob, dequantized(meta, tensors), info
