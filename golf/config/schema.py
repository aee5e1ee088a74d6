"""Typed schemas for every config group.

The composed config is checked against `GolfConfig` (registered as the first default of
`conf/config.yaml`), so an unknown key is an error, a wrong type is an error, and Enum fields list
their allowed values. Cross-field rules live in `golf.config.validate`.
"""

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from hydra.core.config_store import ConfigStore


class OptimizerName(Enum):
    muon_adam = "muon_adam"
    adamw = "adamw"


class QuantScheme(Enum):
    none = "none"
    int8 = "int8"  # the official export, bit for bit
    intn = "intn"  # per-row N-bit rounding, bits per tensor category
    gptq = "gptq"  # intn with full-Hessian error compensation


class ClipMode(Enum):
    percentile = "percentile"  # per-row quantile of |W_r| at quant.clip_percentile
    sdclip = "sdclip"  # per-row quant.sdclip_k x std(W_r)
    search = "search"  # GPTQ-lite: the best of quant.search_percentiles per matrix


class CalibSource(Enum):
    train = "train"  # training tokens (data.train_pattern)
    self_generated = "self_generated"  # sampled from the trained model itself


class Compressor(Enum):
    zlib = "zlib"
    zstd = "zstd"
    lzma = "lzma"
    brotli = "brotli"  # needs `pip install brotli`
    none = "none"


class TTTMode(Enum):
    none = "none"
    stream = "stream"  # score-first chunks of the val stream, full weights (PR #461/#549)
    lora = "lora"  # score-first per-document LoRA adapters (PR #77)
    prequant = "prequant"  # research only: adapt on all val, then quantize, then score; never compliant


class TTTOptimizer(Enum):
    sgd = "sgd"
    adamw = "adamw"


class LayerLR(Enum):
    constant = "constant"
    discriminative = "discriminative"  # 0.3x -> 1.0x over depth (resouer #6)
    multipliers = "multipliers"  # ttt.lr_multipliers, one per block (e.g. quantization sensitivity)


class SNRScale(Enum):
    none = "none"
    eb = "eb"  # |E[g]| / std(g), as PR #484's text describes
    eb_abs = "eb_abs"  # mean|g| / std(g), as PR #484's code computed


class LoRAReset(Enum):
    document = "document"  # fresh adapters and optimizer state for every document
    stream = "stream"  # adapters carry across documents


class EvalMode(Enum):
    full = "full"
    sliding = "sliding"


class Device(Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(Enum):
    auto = "auto"  # bf16 on CUDA (the baseline), fp32 on CPU
    bf16 = "bf16"
    fp32 = "fp32"


class Toggle(Enum):
    auto = "auto"  # on for CUDA, off for CPU
    on = "on"
    off = "off"


class ResumeMode(Enum):
    never = "never"  # always a new job dir
    auto = "auto"  # find this command's previous job: skip it if completed, else continue from ckpt/last.pt


class LauncherName(Enum):
    inproc = "inproc"
    torchrun = "torchrun"


class LoggerName(Enum):
    wandb = "wandb"
    none = "none"


class WandbMode(Enum):
    offline = "offline"
    online = "online"
    disabled = "disabled"


@dataclass
class ArchConfig:
    name: str = "baseline"
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    tie_embeddings: bool = True
    tied_embed_init_std: float = 0.005
    logit_softcap: float = 30.0
    rope_base: float = 10000.0
    qk_gain_init: float = 1.5


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
    grad_clip_norm: float = 0.0


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
    clip: ClipMode = ClipMode.percentile
    sdclip_k: float = 12.85
    search_percentiles: list[float] = field(default_factory=lambda: [99.9, 99.95, 99.99, 99.999, 100.0])
    prune_fraction: float = 0.0  # magnitude pruning of each quantized matrix before rounding
    fit_budget: bool = False  # zero the cheapest +-1 codes until the artifact fits budget.artifact_limit_bytes
    gptq_damping: float = 0.01
    gptq_block_size: int = 128
    gptq_act_order: bool = True
    calib_source: CalibSource = CalibSource.train
    calib_seqs: int = 64
    calib_seq_len: int = 0  # 0: train.seq_len
    calib_temperature: float = 0.8
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
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_seqs: int = 32
    seq_len: int = 0  # training sequence length inside a chunk; 0: the eval sequence length
    grad_clip_norm: float = 1.0
    freeze_embeddings: bool = False
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
    compile: bool = False


@dataclass
class EvalConfig:
    name: EvalMode = EvalMode.full
    seq_len: int = 0  # 0: the training sequence length
    stride: int = 0  # sliding: positions between windows; 0: seq_len (non-overlapping)
    batch_tokens: int = 524288
    max_seqs: int = 0  # 0: the whole val split; > 0 is a smoke test and is never compliant


@dataclass
class DataConfig:
    name: str = "demo"
    root: str = ""
    train_pattern: str = "${.root}/fineweb_train_*.bin"
    val_pattern: str = "${.root}/fineweb_val_*.bin"
    tokenizer_path: str = "${.root}/tokenizer.model"
    vocab_size: int = 1024
    sha256: Optional[str] = None  # filled in for data=demo when the cache is built


@dataclass
class BudgetConfig:
    name: str = "record_8xh100"
    train_seconds: float = 600.0  # 0: no wall-clock cap
    eval_seconds: float = 600.0
    artifact_limit_bytes: int = 16_000_000
    enforce_artifact_limit: bool = True


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
    nproc: int = 1


@dataclass
class TrainConfig:
    iterations: int = 20000
    batch_tokens: int = 524288
    seq_len: int = 1024
    grad_accum_steps: int = 0  # 0: 8 // world_size, as the baseline
    warmup_steps: int = 20
    warmdown_iters: int = 1200
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
class GolfConfig:
    seed: int = 1337
    run_name: str = "run"
    sweep_name: str = "adhoc"
    resume: ResumeMode = ResumeMode.never
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


def register_schemas() -> None:
    ConfigStore.instance().store(name="golf_schema", node=GolfConfig)
