"""Calibration for GPTQ: Hessians of every quantized linear's inputs on training tokens or on text the
trained model writes itself. Never validation tokens: Hessians fitted on the val split would tune the
weights to the text they are scored on.

Training tokens may be read only inside the training time: with `quant.calib_source=train` the run keeps
`quant.calib_reserve_s` of the training cap for this and calibrates right after the last step, in the
training phase (golf.trainer `finish`). The pipeline names the shard reads as reader `calibration` in the
data access log, so the compliance checks see which files were read and in which phase.
"""

import logging
import time
from dataclasses import dataclass

import torch

from golf.data.loader import DistributedTokenLoader
from golf.quant.gptq import collect_hessians

log = logging.getLogger(__name__)

CALIB_BATCH_SEQS = 8


@dataclass
class Calibration:
    hessians: dict[str, torch.Tensor]
    source: str  # goes into results.json quant.calibration
    tokens: int
    seconds: float


def train_tokens(train_pattern: str, seqs: int, seq_len: int) -> tuple[torch.Tensor, str]:
    """The first `seqs` sequences of the training stream (the order rank 0 of one process reads)."""
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


def calibrate(model, cfg, autocast_dtype) -> Calibration:
    """The Hessians GPTQ needs, from cfg.quant.calib_source."""
    t0 = time.perf_counter()
    q = cfg.quant
    seq_len = q.calib_seq_len or cfg.train.seq_len
    if q.calib_source == "train":
        tokens, source = train_tokens(cfg.data.train_pattern, q.calib_seqs, seq_len)
    else:
        tokens, source = self_generated_tokens(model, cfg.arch.vocab_size, q.calib_seqs, seq_len,
                                               q.calib_temperature, cfg.seed)
    hessians = collect_hessians(model, tokens, CALIB_BATCH_SEQS, autocast_dtype, q.gptq_embed_hessian)
    return Calibration(hessians, source, tokens.numel(), time.perf_counter() - t0)


def calibrate_in_training(pipeline, model) -> None:
    """The trainer's `finish` when GPTQ calibrates on training tokens (golf.pipeline): right after the last step,
    inside the training time (the reserve); the pipeline's export uses `pipeline.calibration`."""
    with pipeline.reading("calibration"):
        calibration = pipeline.calibration = calibrate(model, pipeline.cfg, pipeline.rt.autocast_dtype)
    log.info(f"calibration: {calibration.source} ({calibration.tokens:,} tokens) in {calibration.seconds:.1f}s of "
             f"training time (reserve {pipeline.cfg.quant.calib_reserve_s:g}s)")
