"""Per-layer groups of a model's weights, found by module identity.

A layer is a block module, found by identity in `model.blocks`: its group holds the block's own
parameter objects, so a block shared by several depths (weight sharing / recurrence) is one group that
lists every depth it serves, and a parameter is never counted twice. Weights outside the blocks are
grouped by their top-level module (tok_emb, skip_weights, lm_head, ...). Grouping by identity rather
than by name prefix is what makes the scales act on the weights they describe (a banked or shared
tensor whose name says nothing about depth is still found through its owning module).
"""

from dataclasses import dataclass, field

import torch


@dataclass
class LayerGroup:
    key: str  # "layer_03" for blocks, else the module name
    depths: list[int]  # block depths served by these weights; empty outside the blocks
    params: list[torch.nn.Parameter] = field(default_factory=list)
    lr_mult: float = 1.0  # set by a TTT layer-LR policy (golf.ttt.training.apply_lr_policy)


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
