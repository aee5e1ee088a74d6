"""Typed schemas for every config group: plain dataclasses, no Hydra.

The composed config is checked against `GolfConfig` (registered by golf.config.compose as the first
default of `golf/conf/config.yaml`), so an unknown key is an error, a wrong type is an error, and Enum
fields list their allowed values. Cross-field rules live in `golf.config.validate`. `from_dict` rebuilds
a typed config from plain data (a record's train_gpt.py carries its config that way, without Hydra).
"""

import dataclasses
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional


class Choice(str, Enum):
    """A config option: equal to, printed as and serialized as its value (`cfg.ttt.mode == "stream"`)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class OptimizerName(Choice):
    muon_adam = "muon_adam"
    adamw = "adamw"


class MuonCoeffs(Choice):
    ns5 = "ns5"  # the baseline quintic (3.4445, -4.7750, 2.0315) at every step
    polar_express = "polar_express"  # per-step Polar Express coefficients (PR #1550), at most 5 steps


class RowNormAxis(Choice):
    rows = "rows"  # each row of the update as it is (the MuonEq-R paper, the 04-09 record)
    transposed = "transposed"  # rows after a tall matrix is transposed to wide, i.e. its columns (PR #1550)


class SideGroup(Choice):
    """The optimizer group a side table's tensor steps in (golf.models.roles)."""

    embed = "embed"  # Adam(W) at the token-embedding LR
    matrix = "matrix"  # Muon
    scalar = "scalar"  # Adam(W) at the scalar LR


class QuantCategory(Choice):
    """A quantization category: bits from quant.bits_<category>."""

    embed = "embed"
    attn = "attn"
    mlp = "mlp"
    other = "other"


class WeightDecayOrder(Choice):
    before = "before"  # W *= 1 - lr*wd, then the update (the baseline-derived stacks)
    after = "after"  # the update, then W *= 1 - lr*wd (PR #462)


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


class CodeFormat(Choice):
    plain = "plain"  # train_gpt.py with golf's modules verbatim
    lzma = "lzma"  # a self-extracting wrapper around the minified script, lzma + base85 (what records ship)
    brotli = "brotli"  # the same with brotli (needs the brotli package to run)


class TTTMode(Choice):
    none = "none"
    stream = "stream"  # score-first chunks of the val stream, full weights (PR #461/#549)
    lora = "lora"  # score-first per-document LoRA adapters, documents batched side by side (PR #77, #1530)
    phased_lora = "phased_lora"  # lora + global SGD over the scored documents between phases (PR #1610, #1626)
    prequant = "prequant"  # research only: adapt on all val, then quantize, then score; never compliant


class TTTOptimizer(Choice):
    sgd = "sgd"
    adamw = "adamw"


class LayerLR(Choice):
    constant = "constant"
    discriminative = "discriminative"  # 0.3x -> 1.0x over depth (resouer #6)
    multipliers = "multipliers"  # ttt.lr_multipliers, one per block (e.g. quantization sensitivity)


class SNRScale(Choice):
    none = "none"
    eb = "eb"  # |E[g]| / std(g), as PR #484's text describes
    eb_abs = "eb_abs"  # mean|g| / std(g), as PR #484's code computed


class LoRAReset(Choice):
    document = "document"  # fresh adapters and optimizer state for every document
    stream = "stream"  # adapters carry across documents


class DocQueue(Choice):
    stream = "stream"  # documents in val order
    length = "length"  # batches of similar length, longest batch first (PR #1530 onwards)


class TiltGate(Choice):
    prefix = "prefix"  # the gate reads the prefix's counts only (PR #2135's token expert)
    word_start = "word_start"  # PR #2018's within-word / word experts: the gate asks whether the target starts a
    #                            word, so the score is not a distribution given the prefix; always refused


class EvalMode(Choice):
    full = "full"
    sliding = "sliding"


class Device(Choice):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(Choice):
    auto = "auto"  # bf16 on CUDA (the baseline), fp32 on CPU
    bf16 = "bf16"
    fp32 = "fp32"


class Toggle(Choice):
    auto = "auto"  # on for CUDA, off for CPU
    on = "on"
    off = "off"


class LoaderName(Choice):
    sequential = "sequential"  # the baseline: one stream over the sorted shards
    coprime = "coprime"  # random coprime-stride windows mixed over many shards (golf/data/coprime_loader.py)


class ResumeMode(Choice):
    never = "never"  # always a new job dir
    auto = "auto"  # find this command's previous job: skip it if completed, else continue from ckpt/last.pt


class LauncherName(Choice):
    inproc = "inproc"
    torchrun = "torchrun"


class LoggerName(Choice):
    wandb = "wandb"
    none = "none"


class WandbMode(Choice):
    offline = "offline"
    online = "online"
    disabled = "disabled"


class MLPKind(Choice):
    relu2 = "relu2"  # proj(relu(fc x)^2), the baseline
    leaky_relu2 = "leaky_relu2"  # proj(leaky_relu(fc x, arch.mlp_leaky_slope)^2)
    star_relu = "star_relu"  # proj(scale * relu(fc x)^2 + bias), per-unit vectors: PR #462's "SwiGLU"
    swiglu = "swiglu"  # proj(silu(gate x) * fc x), the true gated SwiGLU


class BigramHashKind(Choice):
    mult = "mult"  # (prev * 1009 + cur) mod K (PR #462)
    xor = "xor"  # (36313 cur XOR 27191 prev) mod (K - 1), bucket K - 1 reserved (merged records)


class ParallelResidual(Choice):
    none = "none"
    two_lane = "two_lane"  # PR #1550: attention lane and MLP lane from the first decoder layer >= parallel_start
    gptj = "gptj"  # attention and MLP read the same input in every layer >= parallel_start
    two_lane_mix = "two_lane_mix"  # PR #1855+: two lanes that both sublayers write into with learned weights


@dataclass
class ArchConfig:
    """The model. Every default reproduces the official baseline; layer lists index physical blocks."""

    name: str = "baseline"
    vocab_size: int = 1024
    num_layers: int = 9  # physical blocks; with EBLS the virtual layers (ebls_blocks shared blocks serve them)
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    tie_embeddings: bool = True
    tied_embed_init_std: float = 0.005
    logit_softcap: float = 30.0
    rope_base: float = 10000.0
    qk_gain_init: float = 1.5  # initial per-head query gain after QK-norm
    bos_id: int = 1  # document start (checked against the tokenizer's BOS before training)
    bos_mask: bool = True  # SmearGate and BigramHash never read across a BOS (false: as the seeds, which predate it)
    mlp: MLPKind = MLPKind.relu2
    mlp_hidden: int = 0  # 0: mlp_mult * model_dim
    mlp_leaky_slope: float = 0.5
    rope_dims: int = 0  # rotate only the first rope_dims dims of each head; 0: all of them
    rope_ntk_train_len: int = 0  # > 0: NTK base scaling for sequences longer than this; 0: off
    rope_yarn_train_len: int = 0  # > 0: YaRN scaling (golf.models.yarn) for sequences longer than this; 0: off
    doc_attention: bool = False  # attention stays inside each BOS-delimited document (golf.models.document_mask)
    xsa_layers: list[int] = field(default_factory=list)  # exclusive self attention on these blocks
    attn_gate: bool = False  # per-head sigmoid gate on the attention output
    sparse_attn_gate: bool = False  # SparseAttnGate: per-head gate read from the first gate_window input features
    sparse_attn_gate_scale: float = 1.0  # gate = sigmoid(scale * w . x[:gate_window])
    gate_window: int = 12  # input features SparseAttnGate and the gated SmearGate read
    value_embed_dim: int = 0  # value-embedding table width; 0: off
    value_embed_layers: list[int] = field(default_factory=list)
    value_residual: bool = False  # VRL: blocks >= 1 blend the first layer's values into theirs
    bigram_buckets: int = 0  # BigramHash table rows; 0: off
    bigram_dim: int = 128
    bigram_hash: BigramHashKind = BigramHashKind.mult
    bigram_mult: int = 1009  # the "mult" hash's multiplier of the previous token (PR #484's EBLS: 104729)
    bigram_init_std: float = 0.01  # 0: zero table (needs ortho_init, which gives the projection weights)
    bigram_scale_init: float = 0.0  # > 0: learned output scale starting here; 0: no scale
    smear: bool = False  # SmearGate on the normalized embedding
    gated_smear: bool = False  # content-gated SmearGate on the raw embedding (golf.models.gated_smear)
    asym_softcap: bool = False  # AsymLogit: one learnable cap per logit sign, both starting at logit_softcap
    smear_pre_norm: bool = False  # SmearGate before the embedding's RMSNorm (PR #484's EBLS) instead of after it
    smear_init_logit: float = 0.0  # initial gate logit: the previous position's share is sigmoid(this)
    skip_gates: bool = False  # sigmoid-gated U-Net skips
    virtual_skips: bool = False  # one skip weight per encoder/decoder pair of the looped depth (PR #1855+)
    ln_scale: bool = False  # sublayer inputs times 1/sqrt(physical layer + 1)
    recur_layers: list[int] = field(default_factory=list)  # contiguous blocks to run again (depth recurrence)
    recur_loops: int = 1  # extra passes over recur_layers
    recur_start_step: int = 0  # training step from which recurrence runs (a rebuilt model always runs it)
    recur_start_fraction: float = 0.0  # > 0: from this share of training instead (of the wall-clock cap, else steps)
    parallel_residual: ParallelResidual = ParallelResidual.none
    parallel_start: int = 7  # first physical block of the parallel form
    ortho_init: bool = False  # orthogonal init pass over every non-zero-init linear with both dims >= 64
    ortho_proj_scale: bool = False  # that pass also scales side-table projections by 1/sqrt(2 num_layers) (PR #589)
    ebls_blocks: int = 0  # EBLS: shared blocks serving num_layers virtual layers; 0: off
    ebls_rank: int = 8  # rank of the per-virtual-layer bypasses
    ebls_gamma_init: float = -2.0  # gamma logit at init (sigmoid -> 0.12)
    ebls_penalty: float = 0.01  # lambda of the shrinkage penalty lambda * sum(gamma) added to the training loss


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.muon_adam
    tied_embed_lr: float = 0.05
    embed_lr: float = 0.6
    head_lr: float = 0.008
    matrix_lr: float = 0.04
    scalar_lr: float = 0.04
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    muon_momentum: float = 0.95
    muon_momentum_warmup_start: float = 0.85
    muon_momentum_warmup_steps: int = 500
    muon_backend_steps: int = 5
    muon_coeffs: MuonCoeffs = MuonCoeffs.ns5
    muon_row_norm: bool = False  # MuonEq-R: each row of the update divided by its L2 norm before orthogonalizing
    muon_row_norm_axis: RowNormAxis = RowNormAxis.rows
    muon_pe_safety: float = 1.02  # polar_express: the update is divided by this x its norm (PR #1550: 1.0)
    muon_weight_decay: float = 0.0  # decoupled W *= 1 - lr*wd on Muon matrices; 0: off
    muon_wd_order: WeightDecayOrder = WeightDecayOrder.before
    embed_weight_decay: float = 0.0  # > 0: the token embedding steps with AdamW at this decay (else Adam)
    scalar_weight_decay: float = 0.0  # > 0: vectors / control tensors step with AdamW at this decay (else Adam)
    decoder_lr_mult: float = 1.0  # matrix and scalar LR multiplier for tensors of blocks[num_blocks//2:] (PR #462: 2)
    grad_clip_norm: float = 0.0
    bigram_table_group: SideGroup = SideGroup.embed  # PR #462: scalar
    value_embed_proj_group: SideGroup = SideGroup.matrix  # PR #1550: scalar


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


@dataclass
class TTTConfig:
    name: str = "none"
    mode: TTTMode = TTTMode.none
    chunk_tokens: int = 32768  # stream: positions scored, then trained on, per chunk
    epochs: int = 3  # optimizer epochs over each chunk after it is scored
    optimizer: TTTOptimizer = TTTOptimizer.sgd
    lr: float = 0.002  # peak; cosine decay across the whole pass
    lr_floor: float = 0.0  # the cosine ends at lr_floor x lr (pre-quant PR #462 / #1550: 0.1)
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_seqs: int = 32  # sequences per optimizer step over all ranks (global; each rank takes a share)
    seq_len: int = 0  # training sequence length inside a chunk; 0: the eval sequence length
    grad_clip_norm: float = 1.0
    freeze_embeddings: bool = False  # keep the token embedding, output head and BigramHash fixed (PR #484)
    freeze_blocks: int = 0  # the first k blocks stay fixed
    freeze_pattern: str = ""  # regex on parameter names to keep fixed
    layer_lr: LayerLR = LayerLR.constant
    lr_multipliers: list[float] = field(default_factory=list)
    snr_scale: SNRScale = SNRScale.none
    snr_min: float = 0.3
    snr_max: float = 3.0
    lora_rank: int = 8
    lora_chunk: int = 256  # lora: tokens per score-then-step chunk inside a document
    lora_targets: str = r"attn\.(c_q|c_v)$"  # regex on module names that get adapters
    lora_reset: LoRAReset = LoRAReset.document
    lora_head: bool = False  # lora: an adapter on the output head's logits as well
    lora_batch_docs: int = 1  # lora: documents adapted side by side, each with its own adapters
    lora_queue: DocQueue = DocQueue.stream  # lora: the order documents are taken in (recorded in the result)
    phases: int = 1  # phased_lora: global steps, each once its share of phase_docs documents of the queue is scored
    phase_docs: int = 2000  # phased_lora: documents of the queue the last global step trains on
    phase_lr: float = 0.001  # phased_lora: SGD LR of the global steps (momentum, chunk_tokens, batch_seqs as stream)
    phase_epochs: int = 1  # phased_lora: epochs of each global step over its documents
    compile: bool = False
    qat: bool = False  # pre-quant TTT forwards see fake-quantized weights (PR #462 left late QAT on; #1550 off)


@dataclass
class NgramTiltConfig:
    """The token n-gram tilt (PR #2135): where the last order - 1 tokens were followed by one token in at least
    `threshold` of their earlier occurrences, that token's logit gets +boost and the softmax is taken again."""

    enabled: bool = False
    order: int = 16  # the context is the previous order - 1 tokens
    boost: float = 2.625
    threshold: float = 0.8
    gate: TiltGate = TiltGate.prefix
    renormalize: bool = True  # false: the boost without a new softmax (probabilities sum past 1): refused


@dataclass
class EvalConfig:
    name: EvalMode = EvalMode.full
    seq_len: int = 0  # 0: the training sequence length
    stride: int = 0  # sliding: positions between windows; 0: seq_len (non-overlapping)
    batch_tokens: int = 524288
    max_seqs: int = 0  # 0: the whole val split; > 0 is a smoke test and is never compliant
    ngram_tilt: NgramTiltConfig = field(default_factory=NgramTiltConfig)


@dataclass
class DataConfig:
    name: str = "demo"
    root: str = ""
    train_pattern: str = "${.root}/fineweb_train_*.bin"
    val_pattern: str = "${.root}/fineweb_val_*.bin"
    # per-token original-byte sidecar aligned with val_pattern (golf.data.byte_sidecar, CaseOps); empty: none
    val_bytes_pattern: str = ""
    tokenizer_path: str = "${.root}/tokenizer.model"
    vocab_size: int = 1024
    sha256: Optional[str] = None  # filled in for data=demo when the cache is built
    disjoint_check_tokens: int = 1_000_000  # tokens of each train shard compared with the val documents


@dataclass
class BudgetConfig:
    name: str = "record_8xh100"
    train_seconds: float = 600.0  # 0: no wall-clock cap
    eval_seconds: float = 600.0
    devices: int = 8  # devices the time caps are for; eval time measured on fewer is extrapolated to these
    artifact_limit_bytes: int = 16_000_000
    enforce_artifact_limit: bool = True
    check_estimate: bool = True  # refuse before training when the estimated artifact exceeds the limit


@dataclass
class ExportConfig:
    code: CodeFormat = CodeFormat.lzma  # how the run's train_gpt.py (its counted code) is written


@dataclass
class LoggerConfig:
    name: LoggerName = LoggerName.wandb
    mode: WandbMode = WandbMode.offline
    project: str = "golf"
    entity: Optional[str] = None
    group: Optional[str] = None  # default: the sweep name


@dataclass
class LauncherConfig:
    name: LauncherName = LauncherName.inproc
    nproc: int = 1  # processes (GPUs) per node
    nnodes: int = 1  # > 1: one task per node, torchrun c10d rendezvous on the allocation's first node
    rdzv_port: int = 29500


@dataclass
class TrainConfig:
    iterations: int = 20000
    batch_tokens: int = 524288
    seq_len: int = 1024
    grad_accum_steps: int = 0  # 0: 8 // world_size, as the baseline
    warmup_steps: int = 20
    warmdown_iters: int = 1200
    warmdown_fraction: float = 0.0  # > 0: replaces warmdown_iters; LR decays over this last share of the run
    lr_floor: float = 0.0  # the LR multiplier the fraction warmdown ends at
    # [[from_step, value], ...]: from each from_step on, that seq_len / batch_tokens; before the first, train.*
    seq_len_schedule: list[list[int]] = field(default_factory=list)
    batch_schedule: list[list[int]] = field(default_factory=list)
    loader: LoaderName = LoaderName.sequential
    ema_decay: float = 0.0  # > 0: evaluate and export an fp32 EMA of the weights, updated every step (e.g. 0.997)
    swa_every: int = 0  # > 0: evaluate and export the uniform average of snapshots taken every this many steps...
    swa_below: float = 0.2  # ...once lr_mul < this
    val_every: int = 1000
    log_every: int = 200
    device: Device = Device.auto
    precision: Precision = Precision.auto
    compile: Toggle = Toggle.auto
    deterministic: bool = False
    threads: int = 0  # CPU threads; 0: all cores of this process
    checkpoint_every_steps: int = 0  # 0: off; ckpt/last.pt is also written at the cap, the end and on SIGTERM
    checkpoint_every_minutes: float = 5.0  # of measured training time; 0: off


@dataclass
class PathsConfig:
    out_root: str = "outputs"
    data_root: str = "data"
    cache: str = ""  # demo data cache; empty: $GOLF_CACHE or ~/.cache/golf


@dataclass
class ResumeConfig:
    """`resume=never|auto` selects the mode (golf/conf/resume/); see golf.resume."""

    mode: ResumeMode = ResumeMode.never
    allow_code_change: bool = False  # continue a job although this code writes a different train_gpt.py


@dataclass
class GolfConfig:
    seed: int = 1337
    run_name: str = "run"
    sweep_name: str = "adhoc"
    resume: ResumeConfig = field(default_factory=ResumeConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    arch: ArchConfig = field(default_factory=ArchConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    ttt: TTTConfig = field(default_factory=TTTConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


def _typed(hint, value):
    """`value` as the type `hint` asks for: a dataclass from a dict, an Enum from its value, a float from an int."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X]
        return None if value is None else _typed(next(a for a in typing.get_args(hint) if a is not type(None)), value)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_typed(item, v) for v in value]
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(cls, data: dict):
    """A `cls` instance from plain data, every field typed as declared; an unknown key is an error."""
    hints = typing.get_type_hints(cls)
    unknown = set(data) - set(hints)
    if unknown:
        raise KeyError(f"unknown {cls.__name__} keys {sorted(unknown)}")
    return cls(**{k: _typed(hints[k], v) for k, v in data.items()})
