"""The whole run config, `GolfConfig`: one typed group per module of golf.config, plain dataclasses, no Hydra.

The composed config is checked against `GolfConfig` (registered by golf.config.compose as the first
default of `golf/conf/config.yaml`), so an unknown key is an error, a wrong type is an error, and Enum
fields list their allowed values. Cross-field rules live in `golf.config.validate`. `from_dict` rebuilds
a typed config from plain data.
"""

import dataclasses
import typing
from dataclasses import dataclass, field
from enum import Enum

from golf.config.arch import ArchConfig
from golf.config.budget import BudgetConfig, ExportConfig
from golf.config.data import DataConfig
from golf.config.evaluation import EvalConfig
from golf.config.job import LauncherConfig, LoggerConfig, PathsConfig, ResumeConfig
from golf.config.optimizer import OptimizerConfig
from golf.config.quant import QuantConfig
from golf.config.train import TrainConfig
from golf.config.ttt import TTTConfig


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
