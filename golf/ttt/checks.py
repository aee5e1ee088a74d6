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
    errors += tilt_errors(cfg, seq_len)
    if t.mode.value == "none":
        return errors
    if t.epochs < 1 or t.lr <= 0 or t.batch_seqs < 1 or t.seq_len < 0:
        errors.append(f"ttt.epochs={t.epochs}, ttt.lr={t.lr}, ttt.batch_seqs={t.batch_seqs} must be positive and "
                      f"ttt.seq_len={t.seq_len} >= 0")
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
        errors += _document_errors(cfg, seq_len)
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


def _document_errors(cfg, seq_len: int) -> list[str]:
    t, errors = cfg.ttt, []
    if t.lora_rank < 1 or not 1 <= t.lora_chunk <= seq_len or t.lora_batch_docs < 1:
        errors.append(f"ttt.lora_rank={t.lora_rank} and ttt.lora_batch_docs={t.lora_batch_docs} must be >= 1 and "
                      f"ttt.lora_chunk={t.lora_chunk} in [1, eval sequence length {seq_len}]")
    if t.lora_reset == "stream" and (cfg.launcher.nproc > 1 or t.lora_batch_docs > 1 or t.mode == "phased_lora"):
        errors.append("ttt.lora_reset=stream carries adapters from one document to the next, which ranks, batches "
                      "and phases cannot share; use ttt.lora_reset=document (or ttt=lora, lora_batch_docs=1, one "
                      "process)")
    if t.compile:
        errors.append(f"ttt.compile=true is for the full-weight stream protocols; set ttt.compile=false with "
                      f"ttt={t.name}")
    if t.mode == "phased_lora" and not (1 <= t.phases <= t.phase_docs and t.phase_lr > 0 and t.phase_epochs >= 1):
        errors.append(f"ttt.phases={t.phases} must be in [1, ttt.phase_docs={t.phase_docs}], ttt.phase_lr="
                      f"{t.phase_lr} > 0 and ttt.phase_epochs={t.phase_epochs} >= 1")
    return errors


def tilt_errors(cfg, seq_len: int) -> list[str]:
    """The n-gram tilt must stay a distribution over the vocabulary given the prefix: refuse the variants that
    are not (a gate that reads the target, a boost without renormalization)."""
    g, t = cfg.eval.ngram_tilt, cfg.ttt
    if not g.enabled:
        return []
    errors = []
    if g.gate != "prefix":
        errors.append(f"eval.ngram_tilt.gate={g.gate} reads the token being predicted (whether it starts a word, PR "
                      f"#2018's word channels), so the score is not a distribution given the prefix; use "
                      f"eval.ngram_tilt.gate=prefix")
    if not g.renormalize:
        errors.append("eval.ngram_tilt.renormalize=false boosts a token without taking the softmax again, so the "
                      "probabilities sum past 1; use eval.ngram_tilt.renormalize=true")
    if t.mode not in ("lora", "phased_lora"):
        errors.append(f"eval.ngram_tilt runs inside the document protocols; use ttt=lora or ttt=phased_lora "
                      f"(ttt={t.name} now)")
    if g.order < 2 or g.boost <= 0 or not 0 < g.threshold <= 1 or g.sync_docs < 0:
        errors.append(f"eval.ngram_tilt needs order >= 2 (got {g.order}), boost > 0 ({g.boost}), threshold in (0, 1] "
                      f"({g.threshold}) and sync_docs >= 0 ({g.sync_docs})")
    elif t.lora_chunk + g.order - 1 > seq_len:
        errors.append(f"eval.ngram_tilt.order={g.order} needs ttt.lora_chunk + order - 1 <= the eval sequence length "
                      f"{seq_len}, so every window holds its contexts; lower ttt.lora_chunk")
    elif g.sync_docs % max(t.lora_batch_docs, 1):
        fix = g.sync_docs // t.lora_batch_docs * t.lora_batch_docs or t.lora_batch_docs
        errors.append(f"eval.ngram_tilt.sync_docs={g.sync_docs} must be a multiple of ttt.lora_batch_docs="
                      f"{t.lora_batch_docs}; try eval.ngram_tilt.sync_docs={fix}")
    return errors
