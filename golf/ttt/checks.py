"""Cross-field rules of the eval and ttt groups (run by golf.config.validate before any work)."""

import re

from golf.models.recurrence import virtual_depth


def ttt_eval_errors(cfg) -> list[str]:
    e, t = cfg.eval, cfg.ttt
    seq_len = e.seq_len or cfg.train.seq_len
    stride = e.stride or seq_len
    errors = []
    if not 0 <= e.stride <= seq_len:
        errors.append(f"eval.stride={e.stride} must be in [0, eval sequence length {seq_len}]; try eval.stride=64")
    if e.name.value == "sliding" and e.stride == 0:
        errors.append("eval=sliding needs eval.stride > 0; try eval=sliding64")
    errors += tilt_errors(cfg)
    if t.mode.value == "none":
        return errors
    if t.epochs < 1 or t.lr <= 0 or t.batch_seqs < 1 or t.seq_len < 0 or not 0 <= t.lr_floor < 1:
        errors.append(f"ttt.epochs={t.epochs}, ttt.lr={t.lr}, ttt.batch_seqs={t.batch_seqs} must be positive, "
                      f"ttt.seq_len={t.seq_len} >= 0 and ttt.lr_floor={t.lr_floor} in [0, 1)")
    if t.qat and t.mode != "prequant":
        errors.append(f"ttt.qat=true applies to pre-quant TTT only (ttt=prequant_adamw); the ttt.mode="
                      f"{t.mode} protocols adapt the dequantized artifact model; set ttt.qat=false")
    if t.mode.value == "stream" and 0 < stride <= seq_len:
        # Both keep every window's scored positions inside one chunk, so a chunk is scored before any update on it.
        if seq_len % stride:
            divisor = max(d for d in range(1, stride + 1) if seq_len % d == 0)
            errors.append(f"stream TTT needs eval.stride={stride} to divide the eval sequence length {seq_len}, so "
                          f"every window's scored positions fall inside one chunk; try eval.stride={divisor}")
        elif t.chunk_tokens % stride or t.chunk_tokens < seq_len:
            fix = max(t.chunk_tokens // stride, seq_len // stride) * stride
            errors.append(f"ttt.chunk_tokens={t.chunk_tokens} must be a multiple of the eval stride {stride} and at "
                          f"least the eval sequence length {seq_len}, so every window's scored positions fall inside "
                          f"one chunk; try ttt.chunk_tokens={fix}")
    if t.mode in ("lora", "phased_lora"):
        errors += _lora_errors(cfg, seq_len)
    depth = virtual_depth(cfg.arch)  # layers as TTT sees them: recurrence and EBLS count virtual layers
    if t.layer_lr.value == "multipliers" and len(t.lr_multipliers) != depth:
        errors.append(f"ttt.layer_lr=multipliers needs one ttt.lr_multipliers entry per layer "
                      f"({depth}), got {len(t.lr_multipliers)}; e.g. ttt.lr_multipliers="
                      f"[{','.join(['1.0'] * depth)}]")
    if not 0 < t.snr_min <= t.snr_max:
        errors.append(f"ttt.snr_min={t.snr_min} and ttt.snr_max={t.snr_max} must satisfy 0 < snr_min <= snr_max")
    if not 0 <= t.freeze_blocks <= depth:
        errors.append(f"ttt.freeze_blocks={t.freeze_blocks} must be in [0, {depth}] (the model's layers)")
    try:
        re.compile(t.freeze_pattern)
        re.compile(t.lora_targets)
    except re.error as exc:
        errors.append(f"ttt.freeze_pattern / ttt.lora_targets is not a valid regex ({exc}); fix the pattern")
    return errors


def _lora_errors(cfg, seq_len: int) -> list[str]:
    t, errors = cfg.ttt, []
    if t.lora_rank < 1 or not 1 <= t.lora_chunk <= seq_len or t.lora_batch_docs < 1:
        errors.append(f"ttt.lora_rank={t.lora_rank} and ttt.lora_batch_docs={t.lora_batch_docs} must be >= 1 and "
                      f"ttt.lora_chunk={t.lora_chunk} in [1, eval sequence length {seq_len}]")
    if t.lora_reset == "stream" and (cfg.launcher.nproc > 1 or t.lora_batch_docs > 1 or t.mode == "phased_lora"):
        errors.append("ttt.lora_reset=stream carries adapters from one document to the next, which ranks, batched "
                      "documents and global steps cannot share; use ttt.lora_reset=document, or ttt=lora with "
                      "ttt.lora_batch_docs=1 on one process")
    if t.compile:
        errors.append(f"ttt.compile=true is for the full-weight stream protocols; set ttt.compile=false with "
                      f"ttt={t.name}")
    if t.mode == "phased_lora" and not (1 <= t.phases <= 3 and t.phase_docs >= t.phases and t.phase_lr > 0
                                        and t.phase_epochs >= 1 and t.chunk_tokens >= 1):
        errors.append(f"phased TTT needs ttt.phases={t.phases} in [1, 3] (more overfit, PR #1626), ttt.phase_docs="
                      f"{t.phase_docs} >= phases, ttt.phase_lr={t.phase_lr} > 0, ttt.phase_epochs={t.phase_epochs} "
                      f">= 1 and ttt.chunk_tokens={t.chunk_tokens} >= 1; e.g. ttt=phased_lora")
    return errors


def tilt_errors(cfg) -> list[str]:
    """The n-gram tilt must stay a distribution over the vocabulary given the prefix: refuse the variants that are
    not (a gate that reads the target, a boost without the new softmax) and a config no scorer would tilt."""
    g = cfg.eval.ngram_tilt
    if not g.enabled:
        return []
    errors = []
    if g.gate != "prefix":
        errors.append(f"eval.ngram_tilt.gate={g.gate} asks whether the target token starts a word (PR #2018's "
                      f"within-word and word experts), so the score is not a distribution given the prefix; use "
                      f"eval.ngram_tilt.gate=prefix")
    if not g.renormalize:
        errors.append("eval.ngram_tilt.renormalize=false boosts a token without taking the softmax again, so the "
                      "probabilities sum past 1; use eval.ngram_tilt.renormalize=true")
    if g.order < 2 or g.boost <= 0 or not 0 < g.threshold <= 1:
        errors.append(f"eval.ngram_tilt needs order >= 2 (got {g.order}), boost > 0 (got {g.boost}) and threshold "
                      f"in (0, 1] (got {g.threshold}); PR #2135: order 16, boost 2.625, threshold 0.8")
    if cfg.eval.name != "sliding" and cfg.ttt.mode in ("none", "prequant"):
        errors.append("eval.ngram_tilt tilts the sliding eval and the legal TTT protocols, not the round trip (the "
                      "official non-overlapping eval) nor pre-quant TTT; add eval=sliding64 or a legal TTT protocol "
                      "such as ttt=phased_lora")
    return errors
