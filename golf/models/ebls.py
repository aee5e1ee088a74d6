"""EBLS, Empirical Bayes Layer Sharing (PR #484; docs/techniques.md#ebls).

A few shared blocks each serve several consecutive virtual layers (block-major: 3 blocks x 3 = 9 layers,
order 0,0,0,1,1,1,2,2,2). Each virtual layer owns its residual vectors and two rank-r bypasses,

    attn_out = Attn_shared(a) + g_attn * up(down(a)),   a = rms(x_in)
    mlp_out  = MLP_shared(m)  + g_mlp  * up(down(m)),   m = rms(x)

with g = sigmoid(logit), logits init -2 (g ~ 0.12), down ~ N(0, 1/r^2), up = 0. Training adds the
shrinkage penalty lambda * sum(g) to the loss, pulling every layer toward the shared weights unless its
deviation pays for itself. Every per-virtual-layer tensor is a parameter of its own EBLSLayer, so
per-layer freezing or LR touches exactly that layer (golf.models.layer_groups).
"""

import torch
from torch import nn

from golf.models.layers import CastedLinear
from golf.models.roles import CONTROL, Role

BYPASS_MATRIX = Role("scalar", "other")  # the low-rank bypasses: Adam, quantized as "other"


class LowRankBypass(nn.Module):
    """x -> up(down(x)): a rank-r linear map from a sublayer's input straight to its output."""

    PARAM_ROLES = {"down.weight": BYPASS_MATRIX, "up.weight": BYPASS_MATRIX}

    def __init__(self, dim: int, rank: int):
        super().__init__()
        self.down = CastedLinear(dim, rank, bias=False)
        nn.init.normal_(self.down.weight, std=1.0 / rank)
        self.up = CastedLinear(rank, dim, bias=False)
        self.up.zero_init = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class EBLSLayer(nn.Module):
    """One virtual layer: its own residual vectors, bypasses and gamma logits around a shared block."""

    PARAM_ROLES = {name: CONTROL for name in ("attn_scale", "mlp_scale", "resid_mix", "attn_gamma_logit",
                                                "mlp_gamma_logit")}

    def __init__(self, dim: int, rank: int, gamma_init: float):
        super().__init__()
        self.attn_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.mlp_scale = nn.Parameter(torch.ones(dim, dtype=torch.float32))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))).float())
        self.attn_bypass = LowRankBypass(dim, rank)
        self.mlp_bypass = LowRankBypass(dim, rank)
        self.attn_gamma_logit = nn.Parameter(torch.tensor(gamma_init, dtype=torch.float32))
        self.mlp_gamma_logit = nn.Parameter(torch.tensor(gamma_init, dtype=torch.float32))

    def gammas(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.sigmoid(self.attn_gamma_logit), torch.sigmoid(self.mlp_gamma_logit)

    def forward(self, x: torch.Tensor, x0: torch.Tensor, block: nn.Module, ve=None, v0=None, mask=None):
        g_attn, g_mlp = (g.to(dtype=x.dtype) for g in self.gammas())
        mix = self.resid_mix.to(dtype=x.dtype)
        x = mix[0][None, None, :] * x + mix[1][None, None, :] * x0
        a = block.normed(block.attn_norm, x)
        y, v = block.attn(a, ve, v0, mask)
        x = x + self.attn_scale.to(dtype=x.dtype)[None, None, :] * (y + g_attn * self.attn_bypass(a))
        m = block.normed(block.mlp_norm, x)
        x = x + self.mlp_scale.to(dtype=x.dtype)[None, None, :] * (block.mlp(m) + g_mlp * self.mlp_bypass(m))
        return x, v


class VirtualLayers(nn.ModuleList):
    """One EBLSLayer per virtual depth, and what the model asks of EBLS: the layer order, the training penalty
    and the gammas it logs (golf.models.gpt)."""

    def __init__(self, dim: int, rank: int, gamma_init: float, depth: int, penalty_weight: float):
        super().__init__(EBLSLayer(dim, rank, gamma_init) for _ in range(depth))
        self.penalty_weight = penalty_weight  # arch.ebls_penalty

    def block_order(self, num_blocks: int) -> list[int]:
        """The shared block of each virtual layer, block-major (3 blocks x 3: 0, 0, 0, 1, 1, 1, 2, 2, 2)."""
        return [i * num_blocks // len(self) for i in range(len(self))]

    def penalty(self) -> torch.Tensor:
        """The shrinkage penalty added to the training loss: arch.ebls_penalty * sum over virtual layers of
        g_attn + g_mlp."""
        return self.penalty_weight * sum(g_attn + g_mlp for g_attn, g_mlp in (layer.gammas() for layer in self))

    def gammas(self) -> dict[str, float]:
        return {f"{part}_{i:02d}": float(g.detach()) for i, layer in enumerate(self)
                for part, g in zip(("attn", "mlp"), layer.gammas())}
