"""The orthogonal init pass of the 03-20 record lineage (docs/techniques.md#orthogonal-init), run after construction.

Every linear flagged zero_init stays zero; every other linear with both dims >= 64 gets orthogonal_(gain=1).
This also overwrites the constructor zeros of the BigramHash / value-embedding projections, as it does in
the sources. The extra 1/sqrt(2L) on names ending in `.proj` (03-20, PR #589) is not applied: in the
banked stacks the presets follow (PR #1019, resouer #6, PR #1550) it only ever hit zero matrices.
"""

from torch import nn


def orthogonal_init_(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear) and not getattr(module, "zero_init", False) and min(module.weight.shape) >= 64:
            nn.init.orthogonal_(module.weight, gain=1.0)
