"""The training-loop config (`train`): batch, schedules, weight averaging, device and checkpoints."""

from dataclasses import dataclass, field

from golf.config.choice import Choice


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
