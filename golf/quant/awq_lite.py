"""AWQ-lite (PR #1908 / #1923 / #2101): keep the most salient block of input columns at more bits.

Input column j of a matrix W [rows, cols] is as salient as its activations are large and its weights
heavy: saliency_j = rms(x_j) * mean_i |W_ij|, with rms(x_j) = sqrt(H_jj) from the GPTQ Hessian
H = X^T X / n of the calibration pass. Columns are cut into groups of `size` (64 in the records); over
all quantized matrices stored below `bits`, the `count` groups with the largest summed saliency (at most
one per matrix) are promoted: GPTQ quantizes them in the same pass with finer per-row scales at `bits`
(int8 in the records, one group), golf.quant.gptq / golf.quant.intn.ColumnGroup.
"""

import torch

from golf.quant.intn import ColumnGroup


def group_saliency(w: torch.Tensor, hessian: torch.Tensor, size: int) -> torch.Tensor:
    """Summed saliency of each whole group of `size` columns (a trailing partial group is never promoted)."""
    saliency = hessian.diagonal().clamp_min(0).sqrt() * w.float().abs().mean(dim=0)
    groups = w.shape[1] // size
    return saliency[: groups * size].reshape(groups, size).sum(dim=1)


def select_groups(matrices: dict[str, torch.Tensor], hessians: dict[str, torch.Tensor], count: int, size: int,
                  bits: int) -> dict[str, ColumnGroup]:
    """`matrices`: the candidate 2-D weights (stored below `bits`) by name -> {name: promoted group}."""
    best = []
    for name, w in matrices.items():
        h = hessians.get(name)
        if h is None or w.ndim != 2 or h.shape[0] != w.shape[1] or w.shape[1] < size:
            continue
        scores = group_saliency(w, h, size)
        top = int(scores.argmax())
        best.append((float(scores[top]), name, top * size))
    best.sort(key=lambda item: -item[0])
    return {name: ColumnGroup(start, size, bits) for _, name, start in best[:count]}
