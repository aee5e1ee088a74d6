"""XSA, exclusive self attention (docs/techniques.md#xsa), on the blocks in arch.xsa_layers."""

import torch
import torch.nn.functional as F


def exclude_self_value(y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """XSA (docs/techniques.md#xsa): remove from each head's output its component along the token's own value.

    y: [B, H, T, hd], v: [B, Hkv, T, hd]. Query head h reads KV head h // (H / Hkv), so viewing y as
    [B, Hkv, H / Hkv, T, hd] lines every head up with its own values without repeating them.
    """
    b, h, t, d = y.shape
    grouped = y.reshape(b, v.size(1), h // v.size(1), t, d)
    unit = F.normalize(v, dim=-1).unsqueeze(2)
    return (grouped - (grouped * unit).sum(dim=-1, keepdim=True) * unit).reshape(b, h, t, d)
