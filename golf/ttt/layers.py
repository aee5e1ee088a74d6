"""Per-layer groups of trainable weights, their learning-rate multipliers and gradient SNR scales.

A layer is a block module, found by identity in `model.blocks`: its group holds the block's own
parameter objects, so a block shared by several depths (weight sharing / recurrence) is one group that
lists every depth it serves, and a parameter is never counted twice. Weights outside the blocks are
grouped by their top-level module (tok_emb, skip_weights, lm_head, ...). Grouping by identity rather
than by name prefix is what makes the scales act on the weights they describe (a banked or shared
tensor whose name says nothing about depth is still found through its owning module).
"""

from dataclasses import dataclass, field

import torch

SNR_EPS = 1e-8


@dataclass
class LayerGroup:
    key: str  # "layer_03" for blocks, else the module name
    depths: list[int]  # block depths served by these weights; empty outside the blocks
    params: list[torch.nn.Parameter] = field(default_factory=list)
    lr_mult: float = 1.0


def layer_groups(model: torch.nn.Module) -> list[LayerGroup]:
    """Groups covering every parameter of `model` exactly once, blocks first in depth order.

    Depths are virtual layers: `model.layer_order()` (when the model has it) gives the physical block
    of each one, so a block re-run by depth recurrence, or an EBLS block shared by several virtual layers,
    is one group listing every depth it serves. Per-virtual-layer modules (`model.virtual_layers`, EBLS)
    are one group each ("virtual_04", depths [4]): freezing or scaling depth 4 reaches exactly them.
    """
    owner: dict[int, LayerGroup] = {}
    groups: list[LayerGroup] = []
    order = model.layer_order() if hasattr(model, "layer_order") else range(len(model.blocks))
    for depth, index in enumerate(order):
        block = model.blocks[index]
        first = next(iter(block.parameters()), None)
        if first is not None and id(first) in owner:
            owner[id(first)].depths.append(depth)
            continue
        group = LayerGroup(f"layer_{index:02d}", [depth])
        for p in block.parameters():
            group.params.append(p)
            owner[id(p)] = group
        groups.append(group)
    for depth, layer in enumerate(getattr(model, "virtual_layers", None) or ()):
        group = LayerGroup(f"virtual_{depth:02d}", [depth], list(layer.parameters()))
        owner.update((id(p), group) for p in group.params)
        groups.append(group)
    for name, p in model.named_parameters():
        if id(p) in owner:
            continue
        key = name.split(".")[0]
        group = next((g for g in groups if g.key == key), None)
        if group is None:
            group = LayerGroup(key, [])
            groups.append(group)
        group.params.append(p)
        owner[id(p)] = group
    return groups


def apply_lr_policy(groups: list[LayerGroup], policy: str, multipliers: list[float], frozen_blocks: int) -> None:
    """Set each group's lr_mult. `discriminative`: linear 0.3x at the first trained block to 1.0x at the
    last (ULMFiT; resouer #6), non-block weights 1.0x. `multipliers`: one value per block depth (e.g. from
    a quantization-sensitivity measurement); a shared block takes the mean over the depths it serves."""
    blocks = [g for g in groups if g.depths]
    n = max(d for g in blocks for d in g.depths) + 1 if blocks else 0
    for g in blocks:
        if policy == "discriminative":
            span = max(n - frozen_blocks - 1, 1)
            mults = [0.3 + 0.7 * max(d - frozen_blocks, 0) / span for d in g.depths]
        elif policy == "multipliers":
            mults = [multipliers[d] for d in g.depths]
        else:
            mults = [1.0]
        g.lr_mult = sum(mults) / len(mults)


def gradient_snr(grads: list[torch.Tensor], estimator: str) -> torch.Tensor:
    """Signal-to-noise ratio of one layer's flattened gradient, as a 0-d tensor on the gradients' device
    (read back only when logged, so a TTT step never waits on the host).

    `eb`: |E[g]| / std(g), the estimator PR #484's text describes; over a whole layer the mean entry is ~0,
    so it sits under any useful floor. `eb_abs`: mean(|g|) / std(g), what its code computed (sample std, as
    there): sqrt(2/pi) ~ 0.8 for Gaussian entries, lower for a layer whose gradient is concentrated in a few
    large entries (sparse rows, outliers), so the scales differ across layers.
    """
    g = torch.cat([t.detach().float().reshape(-1) for t in grads])
    std = g.std(correction=1 if g.numel() > 1 else 0)
    signal = g.mean().abs() if estimator == "eb" else g.abs().mean()
    return signal / (std + SNR_EPS)


def snr_scales(groups: list[LayerGroup], estimator: str, lo: float, hi: float) -> dict[str, torch.Tensor]:
    """Per-group scale clip(snr, lo, hi) over the trainable parameters that have gradients."""
    scales = {}
    for g in groups:
        grads = [p.grad for p in g.params if p.requires_grad and p.grad is not None]
        if grads:
            scales[g.key] = gradient_snr(grads, estimator).clamp(lo, hi)
    return scales


def scale_gradients(groups: list[LayerGroup], scales: dict[str, torch.Tensor]) -> None:
    for g in groups:
        if g.key in scales:
            for p in g.params:
                if p.requires_grad and p.grad is not None:
                    p.grad.mul_(scales[g.key])
