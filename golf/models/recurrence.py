"""Depth recurrence (docs/techniques.md#depth-recurrence): re-run a contiguous range of physical blocks, same weights,
for more virtual depth at no byte cost. The virtual order lists the physical block of each virtual layer:
11 blocks, recur_layers [3, 4, 5], one loop -> [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8, 9, 10] (PR #1550).
"""


def layer_order(base: list[int], recur_layers: list[int], loops: int, active: bool) -> list[int]:
    """The physical block of each virtual layer: `base` plus `loops` extra passes over recur_layers right after
    their first pass (inactive: `base` alone)."""
    if not active or not recur_layers or loops <= 0:
        return list(base)
    end = base.index(recur_layers[-1]) + 1
    return base[:end] + list(recur_layers) * loops + base[end:]


def virtual_depth(arch) -> int:
    """Number of virtual layers of a fully built model (recurrence on): what per-layer TTT settings index."""
    loops = getattr(arch, "recur_loops", 1)
    return arch.num_layers + loops * len(getattr(arch, "recur_layers", ()) or ())


class DepthRecurrence:
    """A model's recurrence (arch.recur_*): which blocks loop, how often, and from when in training."""

    def __init__(self, arch):
        self.layers, self.loops = list(arch.recur_layers), arch.recur_loops
        self.start_step, self.start_fraction = arch.recur_start_step, arch.recur_start_fraction

    def active(self, step: int, progress: float) -> bool:
        """On from arch.recur_start_fraction of training (`progress`) on, else from arch.recur_start_step."""
        if self.start_fraction > 0:
            return progress >= self.start_fraction
        return step >= self.start_step

    def order(self, base: list[int], active: bool) -> list[int]:
        return layer_order(base, self.layers, self.loops, active)

