"""From a trained model to artifact bytes, whatever the scheme, with what results.json reports.

int8 / none go through the official layout (golf.artifact.int8, golf.artifact.container.pack). intn and
gptq quantize per tensor category (golf.quant.intn), GPTQ first collecting Hessians on calibration
tokens, then optionally prune to fit the byte budget (golf.quant.fit). The dequantized weights
returned are the ones the artifact reloads to, so BPB measured on them in memory equals the BPB
of the reloaded artifact.
"""

import time
from dataclasses import dataclass

import torch

from golf.artifact import container, int8
from golf.models.roles import control_names, parameter_roles
from golf.quant.calibration import self_generated_tokens, train_tokens
from golf.quant.fit import fit_to_budget
from golf.quant.gptq import collect_hessians, gptq_quantizer
from golf.quant.intn import bits_by_category, dequantized, quantize_state, round_matrix

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
    return collect_hessians(model, tokens, CALIB_BATCH_SEQS, autocast_dtype), source, tokens.numel()


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
    quantizer = round_matrix
    if q.scheme == "gptq":
        hessians, info["calibration"], info["calib_tokens"] = calibration(model, cfg, autocast_dtype)
        quantizer = gptq_quantizer(hessians, q.gptq_damping, q.gptq_block_size, q.gptq_act_order)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta, tensors, info["params_by_bits"] = quantize_state(state, q, parameter_roles(model, quant=q), quantizer)
    info["bits"] = bits_by_category(q)
    info["clip"] = str(q.clip)

    def encode(t: dict[str, torch.Tensor]) -> bytes:
        return container.pack_quantized(meta, t, cfg.arch, q.compressor, q.level)

    if q.fit_budget:
        tensors, blob, info["fit"] = fit_to_budget(meta, tensors, encode, model_budget_bytes)
    else:
        blob = encode(tensors)
    info["quant_s"] = round(time.perf_counter() - t0, 3)
    return Quantized(blob, dequantized(meta, tensors), info)
