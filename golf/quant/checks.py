"""Config rules of the quant group (called by golf.config.validate before any work starts)."""

import importlib.util
import shutil

LEVELS = {"zlib": (0, 9), "zstd": (1, 22), "lzma": (0, 9), "brotli": (0, 11), "pergroup": (0, 11), "none": (0, 0)}
BITS = (4, 5, 6, 7, 8, 16)


def quant_errors(q) -> list[str]:
    errors = []
    comp = q.compressor.value
    lo, hi = LEVELS[comp]
    if comp != "none" and not lo <= q.level <= hi:
        errors.append(f"quant.level={q.level} is out of range for quant.compressor={comp}; use {lo}..{hi}")
    if comp in ("brotli", "pergroup") and importlib.util.find_spec("brotli") is None:
        errors.append(f"quant.compressor={comp} needs the brotli package; pip install brotli or use zstd / lzma")
    for cat in ("embed", "attn", "mlp", "other", "gate"):
        bits = getattr(q, f"bits_{cat}")
        if bits not in BITS:
            errors.append(f"quant.bits_{cat}={bits} is not supported; use one of {', '.join(map(str, BITS))} "
                          f"(16 keeps the category fp16)")
    if not 0 <= q.prune_fraction < 1:
        errors.append(f"quant.prune_fraction={q.prune_fraction} must be in [0, 1)")
    if not q.search_percentiles or not all(0 < p <= 100 for p in q.search_percentiles):
        errors.append(f"quant.search_percentiles={list(q.search_percentiles)} must be a non-empty list in (0, 100]")
    sdclip_ks = {c: getattr(q, f"sdclip_k_{c}") for c in ("embed", "attn", "mlp", "other")}
    if q.sdclip_k <= 0 or any(k is not None and k < 0 for k in sdclip_ks.values()):
        errors.append(f"quant.sdclip_k={q.sdclip_k} must be positive, quant.sdclip_k_<category> "
                      f"({', '.join(f'{c}={k}' for c, k in sdclip_ks.items())}) null (as sdclip_k), 0 (percentile "
                      f"clip) or positive")
    if q.gptq_damping <= 0 or q.gptq_block_size <= 0:
        errors.append(f"quant.gptq_damping={q.gptq_damping} and quant.gptq_block_size={q.gptq_block_size} must be "
                      f"positive (defaults 0.01 and 128)")
    if q.calib_seqs <= 0 or q.calib_seq_len < 0 or q.calib_temperature <= 0:
        errors.append(f"quant.calib_seqs={q.calib_seqs} must be positive, quant.calib_seq_len={q.calib_seq_len} "
                      f">= 0 and quant.calib_temperature={q.calib_temperature} positive")
    if not 0 <= q.qat_threshold <= 1 or q.qat_soft_tau < 0 or not 0 <= q.qat_soft_below <= 1:
        errors.append(f"quant.qat_threshold={q.qat_threshold} and quant.qat_soft_below={q.qat_soft_below} are lr_mul "
                      f"values in [0, 1] (0.15 and 0.02 are usual), quant.qat_soft_tau={q.qat_soft_tau} must be >= 0")
    if q.scheme.value == "none" and q.qat_threshold > 0:
        errors.append("quant.qat_threshold needs a quantized export (quant.scheme=int8, intn or gptq), not none")
    if q.scheme.value in ("none", "int8") and (q.fit_budget or q.prune_fraction > 0):
        errors.append(f"quant.fit_budget / quant.prune_fraction need an intn or gptq scheme, not "
                      f"quant.scheme={q.scheme.value}; use quant=int6_zstd or quant=gptq_int6")
    return errors + _frontier_errors(q)


def _frontier_errors(q) -> list[str]:
    """LQER, AWQ-lite, the embedding Hessian and the per-group layout (quant=frontier)."""
    errors = []
    scheme = q.scheme.value
    if q.control_bits not in (16, 32):
        errors.append(f"quant.control_bits={q.control_bits} must be 32 (fp32) or 16 (fp16, as the records store them)")
    if q.lqer_top_k < 0 or q.lqer_rank < 1 or q.lqer_group < 1:
        errors.append(f"quant.lqer_top_k={q.lqer_top_k} must be >= 0 (0: off), quant.lqer_rank={q.lqer_rank} and "
                      f"quant.lqer_group={q.lqer_group} >= 1 (the records: 3, 4, 32)")
    if q.awq_groups < 0 or q.awq_group_size < 1 or q.awq_bits not in BITS[:-1]:
        errors.append(f"quant.awq_groups={q.awq_groups} must be >= 0 (0: off), quant.awq_group_size="
                      f"{q.awq_group_size} >= 1 and quant.awq_bits={q.awq_bits} one of 4-8 (the records: 1, 64, 8)")
    needs_gptq = [k for k, on in (("awq_groups", q.awq_groups > 0), ("gptq_embed_hessian", q.gptq_embed_hessian))
                  if on]
    if needs_gptq and scheme != "gptq":
        errors.append(f"quant.{', quant.'.join(needs_gptq)} need calibration Hessians: set quant.scheme=gptq")
    if q.awq_groups > 0 and q.clip.value == "search":
        errors.append("quant.awq_groups needs one clip per matrix (quant.clip=sdclip or percentile), not the search")
    if (q.lqer_top_k > 0 or q.compressor.value == "pergroup") and scheme not in ("intn", "gptq"):
        errors.append(f"quant.lqer_top_k / quant.compressor=pergroup work on intn or gptq codes, not "
                      f"quant.scheme={scheme}; use quant=frontier or quant=gptq_int6")
    if q.compressor.value == "pergroup" and q.hot_compressor.value == "lrzip" and shutil.which("lrzip") is None:
        errors.append("quant.hot_compressor=lrzip needs the lrzip binary (apt-get install lrzip); or set "
                      "quant.hot_compressor=auto to fall back to brotli")
    return errors


def calibration_errors(cfg) -> list[str]:
    """Training tokens may be read only inside the training time: GPTQ calibration on them needs a reserve."""
    q, b = cfg.quant, cfg.budget
    if not (q.scheme == "gptq" and q.calib_source == "train"):
        return []
    if q.calib_reserve_s < 0 or (b.train_seconds > 0 and q.calib_reserve_s >= b.train_seconds):
        return [f"quant.calib_reserve_s={q.calib_reserve_s} must be >= 0 and below budget.train_seconds="
                f"{b.train_seconds}"]
    if q.calib_reserve_s == 0 and b.name != "unlimited":
        return [f"quant.calib_source=train with quant.calib_reserve_s=0 reads training data after training ends, "
                f"which the rules forbid (budget={b.name}); set quant.calib_reserve_s=12 (seconds of the training "
                f"cap kept for calibration) or quant.calib_source=self_generated (budget=unlimited runs it, never "
                f"compliant)"]
    return []
