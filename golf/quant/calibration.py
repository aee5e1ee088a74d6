"""Calibration tokens for GPTQ: training tokens or text the trained model writes itself.

Never validation tokens: Hessians fitted on the val split would tune the weights to the text they
are scored on. The train source reads only data.train_pattern and refuses to run when any of its
files is also a val shard; the returned source string goes into results.json.
"""

import torch

from golf.data.loader import DistributedTokenLoader
from golf.data.shards import find_shards
from golf.errors import DataError


def check_disjoint_from_val(train_pattern: str, val_pattern: str) -> None:
    shared = {p.resolve() for p in find_shards(train_pattern)} & {p.resolve() for p in find_shards(val_pattern)}
    if shared:
        raise DataError(f"GPTQ calibration would read {len(shared)} val shard(s) ({min(shared).name}, ...) "
                        f"through data.train_pattern={train_pattern}; calibration must never see val tokens, "
                        f"fix data.train_pattern or use quant.calib_source=self_generated")


def train_tokens(train_pattern: str, val_pattern: str, seqs: int, seq_len: int) -> tuple[torch.Tensor, str]:
    """The first `seqs` sequences of the training stream (the order rank 0 of one process reads)."""
    check_disjoint_from_val(train_pattern, val_pattern)
    x, _ = DistributedTokenLoader(train_pattern, 0, 1, "cpu").next_batch(seqs * seq_len, seq_len, 1)
    return x, f"train:{train_pattern}"


@torch.no_grad()
def self_generated_tokens(model, vocab_size: int, seqs: int, seq_len: int, temperature: float,
                          seed: int) -> tuple[torch.Tensor, str]:
    """Sample `seqs` sequences from the model, each started by one uniformly random token."""
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ids = torch.randint(0, vocab_size, (seqs, 1), generator=gen).to(device)
    was_training = model.training
    model.eval()
    for _ in range(seq_len - 1):
        logits = model.logits(ids)[:, -1].float() / temperature
        probs = torch.softmax(logits, dim=-1).cpu()
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=gen).to(device)], dim=1)
    model.train(was_training)
    return ids.cpu(), f"self_generated:seqs={seqs},len={seq_len},temperature={temperature},seed={seed}"
