"""What every benchmark shares: composing a golf config outside Hydra's main, building golf's model and
optimizers as a run does, naming the device, and appending results (one JSON line per run, one Markdown row)
under benchmarks/results/, or under $GOLF_BENCH_RESULTS when set (the GPU suite's output folder)."""

import dataclasses
import json
import os
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from golf.config.compose import register_schemas
from golf.config.derived import grad_accum_steps
from golf.config.schema import GolfConfig
from golf.config.validate import validate
from golf.data.demo import ensure_demo
from golf.data.train_loader import build_train_loader
from golf.job_trainer import JobTrainer
from golf.pipeline import Pipeline
from golf.utils.environment import cpu_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("GOLF_BENCH_RESULTS") or REPO / "benchmarks" / "results")


def load_config(overrides: list[str]) -> GolfConfig:
    register_schemas()
    with initialize_config_dir(config_dir=str(REPO / "golf" / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} interpolations resolve outside @hydra.main
    if cfg.data.name == "demo" and not cfg.data.root:
        cfg.data.root = str(ensure_demo(cfg.paths.cache or None))
    del cfg.hydra
    cfg = OmegaConf.to_object(cfg)
    validate(cfg)
    return cfg


class NoSink:
    """A metric sink that drops everything: benchmarks time the Trainer, not its logging."""

    def log(self, step, metrics):
        pass


def golf_training_setup(cfg, rt, compiled: bool):
    """(model, runner, optimizers) from golf's own build stage (golf.pipeline, as a run builds them: seeded init,
    the baseline's bf16 storage dtypes under bf16 autocast, fused Adam on CUDA), compiled when `compiled`."""
    pipeline = Pipeline(cfg, dataclasses.replace(rt, compile=compiled), Path(os.devnull), 0)
    pipeline.build()
    return pipeline.model, pipeline.runner, pipeline.optimizers


def train_loader(cfg, rt):
    """The training token stream of one process, as a run's loader reads it."""
    return build_train_loader(cfg.train, cfg.data.train_pattern, 0, 1, cfg.seed, rt.device)


def golf_trainer(cfg, rt, model, runner, optimizers: dict, checkpointer) -> JobTrainer:
    """golf's Trainer as a run drives it (warmup, schedules, loss watch, the checkpointer given), without periodic
    validation or metric logging: benchmarks time the training steps."""
    return JobTrainer(model, runner, optimizers, lambda: train_loader(cfg, rt), cfg, rt, grad_accum_steps(cfg, 1),
                   lambda step, ms: None, NoSink(), checkpointer)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def record(name: str, row: dict, header: str, md_row: str) -> None:
    """Print the row and append it to <name>.jsonl and (with the header on first use) <name>.md."""
    print(json.dumps(row))
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    md = RESULTS / f"{name}.md"
    if not md.exists():
        md.write_text(header)
    with open(md, "a") as f:
        f.write(md_row + "\n")
