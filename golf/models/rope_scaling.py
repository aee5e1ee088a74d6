"""Rotary tables for sequences longer than training's: the NTK-aware base
base * (T / ntk_train_len) ** (dim / (dim - 2)) (docs/techniques.md#partial-rope-and-ntk-scaling), or YaRN
(golf.models.yarn). Sequences up to the training length keep the plain tables."""

import torch

from golf.models.layers import Rotary, rotary_inv_freq, rotation_tables


class ScaledRotary(Rotary):
    def __init__(self, dim: int, base: float, ntk_train_len: int = 0, yarn_train_len: int = 0):
        super().__init__(dim, base)
        self.dim, self.base, self.ntk_train_len, self.yarn_train_len = dim, base, ntk_train_len, yarn_train_len
        self.yarn_inv_freq = None
        if yarn_train_len:  # imported only when configured, so a record's script embeds what it uses
            from golf.models.yarn import yarn_inv_freq

            self.yarn_inv_freq = yarn_inv_freq

    def tables(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if 0 < self.ntk_train_len < seq_len:
            scale = (seq_len / self.ntk_train_len) ** (self.dim / (self.dim - 2))
            return rotation_tables(rotary_inv_freq(self.dim, self.base * scale), seq_len, device)
        if 0 < self.yarn_train_len < seq_len:
            inv_freq, factor = self.yarn_inv_freq(self.inv_freq, self.yarn_train_len, seq_len)
            cos, sin = rotation_tables(inv_freq, seq_len, device)
            return factor * cos, factor * sin
        return super().tables(seq_len, device)
