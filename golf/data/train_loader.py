"""The training loader `train.loader` selects (apart from golf.data.loader, whose validation reader is
embedded in the scoring script: the coprime loader stays out of bytes_code)."""

import torch

from golf.data.coprime_loader import CoprimeLoader
from golf.data.loader import DistributedTokenLoader


def build_train_loader(train_cfg, pattern: str, rank: int, world_size: int, seed: int,
                       device: str | torch.device = "cpu") -> DistributedTokenLoader | CoprimeLoader:
    """Both loaders have next_batch(global_tokens, seq_len, grad_accum), state_dict and load_state_dict."""
    if train_cfg.loader.value == "coprime":
        return CoprimeLoader(pattern, rank, world_size, seed, device)
    return DistributedTokenLoader(pattern, rank, world_size, device)
