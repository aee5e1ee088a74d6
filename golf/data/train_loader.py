"""The training loader `train.loader` selects; the coprime loader is imported only when selected, so a
record's script embeds it only when it uses it."""

import torch

from golf.data.loader import DistributedTokenLoader


def build_train_loader(train_cfg, pattern: str, rank: int, world_size: int, seed: int,
                       device: str | torch.device = "cpu"):
    """Both loaders have next_batch(global_tokens, seq_len, grad_accum); golf.data.loader_state saves and restores
    where either stands."""
    if train_cfg.loader == "coprime":
        from golf.data.coprime_loader import CoprimeLoader

        return CoprimeLoader(pattern, rank, world_size, seed, device)
    return DistributedTokenLoader(pattern, rank, world_size, device)
