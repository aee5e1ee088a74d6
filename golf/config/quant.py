"""The export config (`quant`): quantization scheme, clipping, calibration and compressor."""

from dataclasses import dataclass, field
from typing import Optional

from golf.config.choice import Choice


class QuantScheme(Choice):
    none = "none"
    int8 = "int8"  # the official export, bit for bit
    intn = "intn"  # per-row N-bit rounding, bits per tensor category
    gptq = "gptq"  # intn with full-Hessian error compensation


class ClipMode(Choice):
    percentile = "percentile"  # per-row quantile of |W_r| at quant.clip_percentile
    sdclip = "sdclip"  # per-row quant.sdclip_k x std(W_r)
    search = "search"  # GPTQ-lite: the best of quant.search_percentiles per matrix


class CalibSource(Choice):
    train = "train"  # training tokens (data.train_pattern)
    self_generated = "self_generated"  # sampled from the trained model itself


class Compressor(Choice):
    zlib = "zlib"
    zstd = "zstd"
    lzma = "lzma"
    brotli = "brotli"  # needs `pip install brotli`
    pergroup = "pergroup"  # codes bucketed by role, rows similarity-sorted (golf.artifact.pergroup)
    none = "none"


class HotCompressor(Choice):
    auto = "auto"  # lrzip when the binary is on PATH, else brotli (and a log line saying so)
    lrzip = "lrzip"  # required: a clear error when the binary is missing
    brotli = "brotli"


class QuantCategory(Choice):
    """A quantization category: bits from quant.bits_<category>."""

    embed = "embed"
    attn = "attn"
    mlp = "mlp"
    other = "other"


@dataclass
class QuantConfig:
    name: str = "int8_zlib"
    scheme: QuantScheme = QuantScheme.int8
    clip_percentile: float = 99.99984
    keep_float_max_numel: int = 65536
    compressor: Compressor = Compressor.zlib
    level: int = 9
    # intn / gptq: bits per tensor category (4-8, or 16 to keep it fp16); small tensors stay float
    bits_embed: int = 8
    bits_attn: int = 6
    bits_mlp: int = 6
    bits_other: int = 8
    bits_gate: int = 16  # SparseAttnGate weights (role "gate"): 8 stores them int8 per row at any size
    control_bits: int = 32  # control tensors (scales, mixes, gains): 32 keeps them fp32, 16 stores fp16 (the records)
    clip: ClipMode = ClipMode.percentile
    sdclip_k: float = 12.85
    sdclip_k_embed: Optional[float] = None  # SDClip k of the embed category; None: sdclip_k; 0: percentile clip
    sdclip_k_attn: Optional[float] = None  # the same for attention (the PR #1855-#2135 records: 13)
    sdclip_k_mlp: Optional[float] = None  # the same for the MLP (the records: 11.5)
    sdclip_k_other: Optional[float] = None  # the same for the other category
    scale_floor: bool = False  # per-row scales >= 1/qmax, as the official int8 export and the seeds' int6
    bigram_table_category: QuantCategory = QuantCategory.embed  # PR #462: other (int6 with the blocks)
    value_embed_table_category: QuantCategory = QuantCategory.embed  # PR #1550: other (int8, percentile clip)
    search_percentiles: list[float] = field(default_factory=lambda: [99.9, 99.95, 99.99, 99.999, 100.0])
    prune_fraction: float = 0.0  # magnitude pruning of each quantized matrix before rounding
    fit_budget: bool = False  # zero the cheapest +-1 codes until the artifact fits budget.artifact_limit_bytes
    gptq_damping: float = 0.01
    gptq_block_size: int = 128
    gptq_act_order: bool = True
    gptq_embed_hessian: bool = False  # GPTQ the tied embedding with the Hessian of the head's input (final norm)
    lqer_top_k: int = 0  # LQER: low-rank correction of the k matrices with the largest quantization error; 0: off
    lqer_rank: int = 4
    lqer_group: int = 32  # B factor: int4 codes with one fp16 scale per this many values (A: int2, one scale)
    awq_groups: int = 0  # AWQ-lite: the most salient column groups (over all matrices) kept at awq_bits; 0: off
    awq_group_size: int = 64
    awq_bits: int = 8
    hot_compressor: HotCompressor = HotCompressor.auto  # compressor=pergroup: how the code buckets are packed
    calib_source: CalibSource = CalibSource.train
    calib_seqs: int = 64
    calib_seq_len: int = 0  # 0: train.seq_len
    calib_temperature: float = 0.8
    # calib_source=train: seconds of the training cap kept for calibrating right after the last step, inside the
    # training time (training data may only be read there); 0 calibrates after training (budget=unlimited only)
    calib_reserve_s: float = 0.0
    save_prequant: bool = True  # keep the unquantized weights so `python -m golf.quant` can re-quantize
    qat_threshold: float = 0.0  # > 0: late QAT once lr_mul < this (e.g. 0.15); 0: off
    qat_soft_tau: float = 0.0  # > 0: soft-round backward with this temperature once lr_mul < qat_soft_below
    qat_soft_below: float = 0.02
