"""From a trained model to artifact bytes, whatever the scheme, with what results.json reports.

int8 / none go through the official layout (golf.quant.artifact.pack, unchanged). intn and gptq
quantize per tensor category (golf.quant.intn), GPTQ first collecting Hessians on calibration
tokens, then optionally prune to fit the byte budget (golf.quant.fit). The dequantized weights
returned are the ones the artifact reloads to, so BPB measured on them in memory equals the BPB
of the reloaded artifact.
"""

import time
from dataclasses import dataclass

import torch

from golf.quant import artifact
from golf.quant.calibration import self_generated_tokens, train_tokens
from golf.quant.fit import fit_to_budget
from golf.quant.gptq import collect_hessians, gptq_quantizer
from golf.quant.intn import bits_by_category, dequantized, quantize_state, round_matrix

CALIB_BATCH_SEQS = 8


@dataclass
class Exported:
    blob: bytes
    state: dict[str, torch.Tensor]  # the weights the artifact reloads to
    info: dict


def calibration(model, cfg, autocast_dtype) -> tuple[dict[str, torch.Tensor], str, int]:
    q, d = cfg.quant, cfg.data
    seq_len = q.calib_seq_len or cfg.train.seq_len
    if q.calib_source.value == "train":
        tokens, source = train_tokens(d.train_pattern, d.val_pattern, q.calib_seqs, seq_len)
    else:
        tokens, source = self_generated_tokens(model, cfg.arch.vocab_size, q.calib_seqs, seq_len,
                                               q.calib_temperature, cfg.seed)
    return collect_hessians(model, tokens, CALIB_BATCH_SEQS, autocast_dtype), source, tokens.numel()


def export(model, cfg, model_budget_bytes: int, autocast_dtype: torch.dtype | None = None) -> Exported:
    """Quantize and pack `model` per cfg.quant; `model_budget_bytes` is the limit minus the code bytes."""
    q = cfg.quant
    t0 = time.perf_counter()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    compressor = f"{q.compressor.value}-{q.level}"
    info = {"scheme": q.scheme.value, "name": q.name, "compressor": compressor, "calibration": "none"}
    if q.scheme.value in ("none", "int8"):
        blob = artifact.pack(state, cfg.arch, q)
        info["bits"] = {"all": 8 if q.scheme.value == "int8" else "raw"}
        info["quant_s"] = round(time.perf_counter() - t0, 3)
        return Exported(blob, artifact.unpack(blob)[1], info)
    quantizer = round_matrix
    if q.scheme.value == "gptq":
        hessians, info["calibration"], info["calib_tokens"] = calibration(model, cfg, autocast_dtype)
        quantizer = gptq_quantizer(hessians, q.gptq_damping, q.gptq_block_size, q.gptq_act_order)
    meta, tensors, info["params_by_bits"] = quantize_state(state, q, quantizer)
    info["bits"] = bits_by_category(q)
    info["clip"] = q.clip.value

    def encode(t: dict[str, torch.Tensor]) -> bytes:
        return artifact.pack_quantized(meta, t, cfg.arch, q.compressor.value, q.level)

    if q.fit_budget:
        tensors, blob, info["fit"] = fit_to_budget(meta, tensors, encode, model_budget_bytes)
    else:
        blob = encode(tensors)
    info["quant_s"] = round(time.perf_counter() - t0, 3)
    return Exported(blob, dequantized(meta, tensors), info)
