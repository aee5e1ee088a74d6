"""The official int8 weights layout: per-row int8 quantization of a state dict (the official
`quantize_state_dict_int8`) and its exact inverse.

- non-float tensors: stored as they are;
- small float tensors (numel <= keep_float_max_numel): kept as float, fp32 for control tensors (the
  names in `control`, golf.models.roles), fp16 otherwise (the original dtype is remembered);
- 2-D float tensors: per-row clip at the `clip_percentile` quantile of |W_r|, scale
  s_r = max(c_r / 127, 1 / 127) stored fp16, q = clamp(round(clip(W) / s_r), -127, 127);
- other float tensors: one fp32 scale from the same quantile over all entries.
"""

import torch

FORMAT = "int8_per_row_v1"


def _quantize_tensor(t: torch.Tensor, clip_q: float) -> tuple[torch.Tensor, torch.Tensor]:
    t32 = t.float()
    if t32.ndim == 2:
        clip = torch.quantile(t32.abs(), clip_q, dim=1)
        clipped = torch.maximum(torch.minimum(t32, clip[:, None]), -clip[:, None])
        scale = (clip / 127.0).clamp_min(1.0 / 127.0)
        q = torch.clamp(torch.round(clipped / scale[:, None]), -127, 127).to(torch.int8)
        return q.contiguous(), scale.to(torch.float16).contiguous()
    clip = float(torch.quantile(t32.abs().flatten(), clip_q).item()) if t32.numel() else 0.0
    scale = torch.tensor(clip / 127.0 if clip > 0 else 1.0, dtype=torch.float32)
    q = torch.clamp(torch.round(torch.clamp(t32, -clip, clip) / scale), -127, 127).to(torch.int8)
    return q.contiguous(), scale


def quantize_state_dict(state: dict[str, torch.Tensor], clip_percentile: float, keep_float_max_numel: int,
                        control: set[str]) -> dict:
    quantized, scales, dtypes, passthrough, orig_dtypes = {}, {}, {}, {}, {}
    for name, tensor in state.items():
        t = tensor.detach().to("cpu").contiguous()
        if not t.is_floating_point():
            passthrough[name] = t
        elif t.numel() <= keep_float_max_numel:
            if name in control:
                passthrough[name] = t.float().contiguous()
            else:
                orig_dtypes[name] = str(t.dtype).removeprefix("torch.")
                passthrough[name] = t.to(torch.float16).contiguous()
        else:
            quantized[name], scales[name] = _quantize_tensor(t, clip_percentile / 100.0)
            dtypes[name] = str(t.dtype).removeprefix("torch.")
    return {"format": FORMAT, "quantized": quantized, "scales": scales, "dtypes": dtypes,
            "passthrough": passthrough, "passthrough_orig_dtypes": orig_dtypes}


def dequantize_state_dict(obj: dict) -> dict[str, torch.Tensor]:
    if obj.get("format") != FORMAT:
        raise ValueError(f"not an {FORMAT} payload: {obj.get('format')!r}")
    out = {}
    for name, q in obj["quantized"].items():
        dtype = getattr(torch, obj["dtypes"][name])
        s = obj["scales"][name]
        if s.ndim > 0:
            w = q.float() * s.float().view(q.shape[0], *([1] * (q.ndim - 1)))
        else:
            w = q.float() * float(s.item())
        out[name] = w.to(dtype).contiguous()
    for name, t in obj["passthrough"].items():
        orig = obj["passthrough_orig_dtypes"].get(name)
        out[name] = t.to(getattr(torch, orig)).contiguous() if orig else t
    return out
