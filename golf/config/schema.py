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
    int8 = "int8"


class Compressor(Enum):
    zlib = "zlib"
    zstd = "zstd"
    lzma = "lzma"
    none = "none"


class TTTMode(Enum):
    none = "none"


class EvalMode(Enum):
    full = "full"


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


@dataclass
class TTTConfig:
    name: TTTMode = TTTMode.none


@dataclass
class EvalConfig:
    name: EvalMode = EvalMode.full
    seq_len: int = 0  # 0: the training sequence length
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
