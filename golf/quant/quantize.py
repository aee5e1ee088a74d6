"""From a trained model to artifact bytes, whatever the scheme, with what results.json reports.

int8 / none go through the official layout (golf.artifact.int8, golf.artifact.container.pack); intn and
gptq through golf.quant.lowbit. The dequantized weights returned are the ones the artifact reloads to,
so BPB measured on them in memory equals the BPB of the reloaded artifact.
"""

import time
from dataclasses import dataclass

import torch

from golf.artifact import container, int8
from golf.models.roles import control_names


@dataclass
class Quantized:
    blob: bytes
    state: dict[str, torch.Tensor]  # the weights the artifact reloads to
    info: dict


def reads_training_data(quant) -> bool:
    """Whether the export reads training tokens (and so must run inside the training time)."""
    return quant.scheme == "gptq" and quant.calib_source == "train"


def pack_official(model, arch, quant, step_state: dict | None = None) -> bytes:
    """Artifact bytes of `model` in the official layout: int8 per row (quant.scheme=int8) or raw weights."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if quant.scheme == "int8":
        weights = int8.quantize_state_dict(state, quant.clip_percentile, quant.keep_float_max_numel,
                                           control_names(model))
    else:
        weights = container.raw_weights(state)
    return container.pack(weights, arch, quant.scheme, quant.compressor, quant.level, step_state)


def quantize(model, cfg, model_budget_bytes: int, autocast_dtype: torch.dtype | None = None,
             calibration=None, step_state: dict | None = None) -> Quantized:
    """Quantize and pack `model` per cfg.quant; `model_budget_bytes` is the limit minus the code bytes. GPTQ
    uses `calibration` (golf.quant.calibration.Calibration) when the run collected it inside its training time,
    else calibrates here. `step_state` (golf.artifact.container.Contents) goes into the artifact."""
    q = cfg.quant
    t0 = time.perf_counter()
    info = {"scheme": str(q.scheme), "name": q.name, "compressor": f"{q.compressor}-{q.level}", "calibration": "none"}
    if q.scheme in ("none", "int8"):
        blob = pack_official(model, cfg.arch, q, step_state)
        info["bits"] = {"all": 8 if q.scheme == "int8" else "raw"}
        info["quant_s"] = round(time.perf_counter() - t0, 3)
        return Quantized(blob, container.unpack(blob).weights, info)
    from golf.quant.lowbit import quantize_lowbit  # intn / gptq code, embedded in a record only when used

    blob, state, lowbit_info = quantize_lowbit(model, cfg, model_budget_bytes, autocast_dtype, calibration, step_state)
    info.update(lowbit_info, quant_s=round(time.perf_counter() - t0, 3))
    return Quantized(blob, state, info)
